"""Workflows of no-op tasks, and one that waits for an event, for the benchmarks."""
from zenaton.abstracts.event import Event
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
from zenaton.tasks.wait import Wait
from zenaton.traits.zenatonable import Zenatonable


class Noop(Task, Zenatonable):
    def __init__(self, i):
        self.i = i

    def handle(self):
        return self.i


class Steps(Workflow, Zenatonable):
    def __init__(self, steps):
        self.steps = steps
        self.done = 0

    def handle(self):
        for i in range(self.steps):
            Noop(i).execute()
            self.done += 1
        return self.done


class Go(Event):
    """The event a Waiter waits for."""

    def __init__(self, value=None):
        self.value = value


class Waiter(Workflow, Zenatonable):
    """Waits for a Go event (no timeout), then runs one no-op task with its value."""

    def __init__(self, key):
        self.key = key
        self.got = None

    def handle(self):
        event = Wait(Go).execute()
        self.got = event.value
        return Noop(self.got).execute()

    def id(self):
        return self.key
