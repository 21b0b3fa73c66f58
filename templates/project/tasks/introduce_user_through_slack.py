from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class IntroduceUserThroughSlack(Task, Zenatonable):
    def __init__(self, slack_id, activated=False):
        self.slack_id = slack_id
        self.activated = activated

    def handle(self):
        note = " (already active!)" if self.activated else ""
        print(f"introducing <@{self.slack_id}> on #general{note}")
        return f"introduced {self.slack_id}"
