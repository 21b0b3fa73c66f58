from zenaton.abstracts.event import Event


class UserActivated(Event):
    def __init__(self, source="web"):
        self.source = source
