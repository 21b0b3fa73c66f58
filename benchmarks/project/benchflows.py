"""Workflows of no-op tasks, for the benchmarks."""
from zenaton.abstracts.task import Task
from zenaton.abstracts.workflow import Workflow
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
