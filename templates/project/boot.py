"""Imports the project's workflows, tasks and events so the daemon knows them."""
from events.user_activated import UserActivated  # noqa: F401
from tasks.introduce_user_through_slack import IntroduceUserThroughSlack  # noqa: F401
from tasks.send_welcome_email import SendWelcomeEmail  # noqa: F401
from workflows.welcome_flow import WelcomeFlow  # noqa: F401
