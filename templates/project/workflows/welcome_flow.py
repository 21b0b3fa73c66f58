from zenaton.abstracts.workflow import Workflow
from zenaton.tasks.wait import Wait
from zenaton.traits.zenatonable import Zenatonable

from events.user_activated import UserActivated
from tasks.introduce_user_through_slack import IntroduceUserThroughSlack
from tasks.send_welcome_email import SendWelcomeEmail


class WelcomeFlow(Workflow, Zenatonable):
    """Welcome a new user by email, then introduce them on Slack.

    If the user activates their account within a second of the email, the
    introduction mentions it (send the event with `zenaton send-event`).
    """

    def __init__(self, user):
        self.email = user.email
        self.slack_id = user.slack_id
        self.activated = False
        self.email_receipt = None

    def handle(self):
        self.email_receipt = SendWelcomeEmail(self.email).execute()
        Wait(UserActivated).seconds(1).execute()
        return IntroduceUserThroughSlack(self.slack_id, self.activated).execute()

    def on_event(self, event):
        if isinstance(event, UserActivated):
            self.activated = True

    def id(self):
        return self.email
