"""WelcomeFlow, tested with zenaton's testing kit: the real engine in this process, a memory
store, a fake clock; no daemon, nothing written, no waiting. Run them with `pytest`.

`zenaton_env` (a pytest fixture that comes with zenaton) is a zenaton.testing.WorkflowEnvironment.
"""
from types import SimpleNamespace

from events.user_activated import UserActivated
from tasks.send_welcome_email import SendWelcomeEmail
from workflows.welcome_flow import WelcomeFlow

user = SimpleNamespace(email="ada@example.com", slack_id="U1")


def test_welcome_flow_times_out_after_a_day(zenaton_env):
    zenaton_env.mock_task(SendWelcomeEmail, returns={"status": "sent"})  # no email leaves
    run = zenaton_env.dispatch(WelcomeFlow(user))  # in-process, no daemon
    run.until_waiting()  # runs until it waits
    zenaton_env.advance(days=1)  # fake clock: the wait times out
    assert run.status == "completed"
    assert run.properties(step=1)["email_receipt"] == {"status": "sent"}
    assert [s.name for s in run.steps] == ["SendWelcomeEmail", "UserActivated", "IntroduceUserThroughSlack"]
    assert run.result == "introduced U1"


def test_an_activated_user_is_introduced_as_such(zenaton_env):
    run = zenaton_env.dispatch(WelcomeFlow(user)).until_waiting()  # SendWelcomeEmail really runs
    run.send_event(UserActivated("mobile"))  # while the flow waits for it
    assert run.status == "completed"
    assert run.properties()["activated"] is True
    assert run.step(2).result.source == "mobile"  # the wait's step holds the event it got
    assert run.step(3).output[0]["stdout"] == "introducing <@U1> on #general (already active!)\n"


def test_a_failing_email_is_retried(zenaton_env):
    attempts = []

    def flaky(task):
        attempts.append(task.email)
        if len(attempts) < 3:
            raise ConnectionError("the mail server is down")
        return {"to": task.email, "status": "sent"}

    zenaton_env.mock_task(SendWelcomeEmail, flaky)
    run = zenaton_env.dispatch(WelcomeFlow(user))
    run.until_complete()  # the clock skips the retry delays (on_error_retry_delay: 5 s, then 10 s) and the wait
    assert attempts == ["ada@example.com"] * 3
    assert run.step(1).attempts == 3
