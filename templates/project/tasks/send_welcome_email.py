from zenaton.abstracts.task import Task
from zenaton.traits.zenatonable import Zenatonable


class SendWelcomeEmail(Task, Zenatonable):
    def __init__(self, email):
        self.email = email

    def handle(self):
        print(f"sending the welcome email to {self.email}")
        return {"to": self.email, "status": "sent"}

    def on_error_retry_delay(self, error):
        n = self.get_context().retry_index
        return False if n > 3 else n * 5
