"""Turning a run's decisions into batch writes: tasks, child instances, waits, completion."""

from __future__ import annotations

import json

from zenaton_runtime.engine.journaling import RUNNING, ActivationBase, error_info
from zenaton_runtime.errors import DuplicateInstanceError
from zenaton_runtime.instances import new_instance, new_task_id
from zenaton_runtime.models import UNFINISHED, Entry, Instance, InstanceStatus, Kind, TaskRecord, TaskStatus, Timer
from zenaton_runtime.replay import Decision


class Decider(ActivationBase):
    def _decide(self, decisions: list[Decision]) -> None:
        failures = [d for d in decisions if d.kind == "fail"]
        for decision in failures[:1] or decisions:  # a failed decision stops everything it came with
            if self.status is not RUNNING:
                return
            try:
                _DECIDE[decision.kind](self, decision)
            except Exception as error:  # user code ran here too (a child's id(), versions())
                self._pause_with_error(error_info(error))

    def _decide_task(self, d: Decision) -> None:
        data = self.codec.encode(d.job, d.name or "task")
        task_id = new_task_id()
        self.batch.add_task(
            TaskRecord(task_id, self.id, d.position, d.name, data, TaskStatus.QUEUED, 0, 0, self.now, self.now)  # type: ignore[arg-type]
        )
        group = "null" if d.group is None else int(d.group)
        self._append(Entry.TASK_SCHEDULED, d.position, d.name, f'{{"task_id": "{task_id}", "group": {group}}}')
        self.engine.log(f"{self._label()}: task {d.name} scheduled (position {d.position})")

    def _decide_child(self, d: Decision) -> None:
        self._start_instance(d, wait=True)

    def _decide_dispatch(self, d: Decision) -> None:
        self._start_instance(d, wait=False)

    def _start_instance(self, d: Decision, wait: bool) -> None:
        instance, started, task = new_instance(
            self.codec,
            d.job,
            env=self.instance.env,
            now=self.now,
            parent_id=self.id,
            parent_position=d.position if wait else None,
        )
        if instance.kind is Kind.WORKFLOW and instance.custom_id is not None:
            key = (instance.env, instance.name, instance.custom_id)
            if self.engine.custom_id_claimed(key) or self._custom_id_held(instance):
                raise DuplicateInstanceError(
                    f"workflow {instance.name!r} already has an unfinished instance with id {instance.custom_id!r} "
                    f"(env {instance.env!r}); position {d.position} cannot start another"
                )
            self.engine.claimed_ids.add(key)
        self.batch.create_instance(instance, started, task)
        data = json.dumps({"id": instance.id, "kind": instance.kind.value, "wait": wait})
        self._append(Entry.DISPATCHED, d.position, d.name, data)
        self.engine.log(f"{self._label()}: dispatched {instance.kind.value} {d.name} as {instance.id[:8]}")

    def _custom_id_held(self, instance: Instance) -> bool:
        """An unfinished instance holds the child's custom id in the store; the commit in flight
        may be the one that finishes it, so a holder found is looked up again once it landed."""

        def held() -> bool:
            taken = self.engine.store.list_instances(
                env=instance.env, name=instance.name, custom_id=instance.custom_id, kind="workflow"
            )
            return any(i.status in UNFINISHED for i in taken)

        if not held():
            return False
        if not self.engine.see_commit_in_flight():
            return True
        return held()

    def _decide_wait(self, d: Decision) -> None:
        self._append(Entry.WAIT_STARTED, d.position, d.name, json.dumps({"event": d.event, "fire_at": d.fire_at}))
        pending = self.run is not None and d.position in self.run.pending_waits()
        if d.fire_at is not None and pending:  # a replay may already have ended it with a journaled event
            self.batch.add_timer(Timer(self.id, d.position, d.fire_at))  # type: ignore[arg-type]
        self.engine.log(f"{self._label()}: waiting for {d.name} (position {d.position})")

    def _decide_complete(self, d: Decision) -> None:
        result = self.codec.encode(d.result, "result")
        self._snapshot()
        self._append(Entry.COMPLETED, data='{"result": ' + result + "}")
        self.status = InstanceStatus.COMPLETED
        self._drop_run()
        self.batch.delete_timers(self.id)
        if self.instance.parent_id and self.instance.parent_position is not None:
            payload = '{"position": %d, "id": "%s", "result": %s}' % (self.instance.parent_position, self.id, result)
            self.batch.post(self.instance.parent_id, "child_completed", self.instance.name, payload)
        self.engine.log(f"{self._label()}: completed")

    def _decide_fail(self, d: Decision) -> None:
        assert d.error is not None
        self._pause_with_error(error_info(d.error, d.traceback))


_DECIDE = {
    kind: getattr(Decider, f"_decide_{kind}") for kind in ("task", "child", "dispatch", "wait", "complete", "fail")
}
