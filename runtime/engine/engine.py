"""The engine: claim ready work, decide, commit in one batch, hand tasks to the pool.

The engine does the I/O around the pure decision core. One ``step()``:
1. collect inputs: finished task attempts, due timers, ready instances' inbox;
2. activate each instance concerned (its run from the LRU, or rebuilt by replay);
3. commit everything as ONE batch (group commit) — nothing runs before it is durable;
4. claim queued tasks for the free workers.

With ``background_commits`` (the daemon) a step's COMMIT may still be in flight while the next
step collects results and decides (SQLite lets go of the GIL while it writes and syncs):
the next step leaves the instances that commit touches alone, looks for new work only once it
landed, and lands it before writing its own; the claimed tasks go to the workers only then.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from zenaton.abstracts.task import Task
from zenaton_runtime.engine.context import NO_CUSTOM_IDS, CustomId, RunCache, StepContext
from zenaton_runtime.engine.lookout import Lookout
from zenaton_runtime.engine.stats import EngineStats
from zenaton_runtime.engine.task_activation import TaskActivation
from zenaton_runtime.engine.workflow_activation import WorkflowActivation
from zenaton_runtime.errors import LeaseLost, StoreError
from zenaton_runtime.models import InboxItem, Instance, Kind, LogLine, TaskRecord, Timer
from zenaton_runtime.pool.attempts import Attempt, Outcome
from zenaton_runtime.pool.runner import Runner
from zenaton_runtime.project.loader import Project
from zenaton_runtime.store import Batch, PendingCommit, Store
from zenaton_runtime.timing.clock import Clock, SystemClock
from zenaton_runtime.timing.schedules import fire_due

Log = Callable[[str], None]


@dataclass(slots=True)
class Inputs:
    """What one step brings one instance."""

    outcomes: list[tuple[TaskRecord, Outcome]] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    ready: bool = False  # it has inbox items (or is new)


Work = dict[str, Inputs]  # instance id -> its inputs


@dataclass(slots=True)
class Landing:
    """A step whose commit is in flight, and what to do once it lands."""

    pending: PendingCommit
    batch: Batch
    work: Work
    held: set[str]  # instances whose rows it writes: the next step leaves them alone
    claimed_ids: AbstractSet[CustomId]  # custom ids its children take
    lines: list[str]  # its log lines, written once it landed
    now: float
    looked: bool
    full: bool
    limit: int
    started: float  # time.perf_counter() when commit_step was called


class BoundedDict(OrderedDict):  # type: ignore[type-arg]
    """A dict that forgets its oldest keys past ``limit`` entries."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: object, value: object) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            self.popitem(last=False)


class Engine:
    """Drives every instance of one store. Tests call ``run_until_idle()``."""

    def __init__(
        self,
        store: Store,
        project: Project,
        runner: Runner,
        *,
        clock: Clock | None = None,
        cache_size: int = 1000,
        batch_limit: int = 500,
        decision_timeout: float | None = 10.0,
        log: Log | None = None,
        background_commits: bool = False,
        timezone: str = "UTC",
    ) -> None:
        self.store = store
        self.project = project
        self.runner = runner
        self.clock = clock or SystemClock()
        self.cache = RunCache(cache_size)
        self.batch_limit = batch_limit
        # Ready instances per step: small enough that task results are collected (and the
        # workers fed) often while a backlog of events or dispatches is worked through.
        self.ready_limit = min(batch_limit, 100)
        self.decision_timeout = decision_timeout  # seconds workflow code may run in one decision
        self.timezone = timezone  # the project's: of the schedules workflows add
        # What a step decides is logged (``log``) once it is committed; the rest at once (``emit``).
        self.emit: Log = log or (lambda message: None)
        self._lines: list[str] = []
        self.log: Log = self._lines.append
        self.in_flight: dict[str, TaskRecord] = {}
        self._pending: list[Outcome] = []
        self.claiming = True
        self.store_failure: StoreError | None = None  # the last failed write, until one succeeds
        self.envs = BoundedDict(10_000)  # instance id -> env, for the attempts of its tasks
        self.lookout = Lookout(store)
        self.background_commits = background_commits  # the store may land a step's commit later
        self._landing: Landing | None = None
        self._in_doubt = False  # a commit failed: it may have landed all the same (its answer lost)
        self._forgetting: set[str] = set()  # tasks this step's decisions forget, once its commit lands
        self._forgotten_in_doubt: set[str] = set()  # those of a failed commit: forgotten if it landed
        self.stats = EngineStats()  # counted once a commit landed (the daemon publishes them)

    def step(self, timeout: float = 0.0) -> int:
        """One round; returns how many things happened (0 means idle)."""
        if self._in_doubt and not self._settle_doubt():
            return 0
        landing = self._landing
        outcomes = self._pending + list(self.runner.poll(0.0 if landing else timeout))
        self._pending = []
        now = self.clock.now()
        work: Work = defaultdict(Inputs)
        self._sort_outcomes(outcomes, landing.held if landing is not None else (), work)
        handed = 0
        try:
            if landing is not None and (not outcomes or self.lookout.wants_look(now, settled=False)):
                handed, landing = self._land(), None  # a look must see the store with that commit
                held_back, self._pending = self._pending, []
                self._sort_outcomes(held_back, (), work)  # theirs too: it landed
            looked = landing is None and self.lookout.must_look(now)
            full = looked and self._look(now, work)
            batch = Batch()
            claimed: AbstractSet[CustomId] = NO_CUSTOM_IDS
            if work:
                ctx = self._context(now)
                instances = self.store.get_instances(list(work))
                inboxes = self.store.inboxes([i for i, inputs in work.items() if inputs.ready])
                for instance_id, inputs in work.items():
                    instance = instances.get(instance_id)
                    if instance is not None:
                        self.envs[instance.id] = instance.env
                        batch.extend(self._activate(ctx, instance, inputs, inboxes.get(instance_id)))
                claimed = ctx.claimed_ids
            if landing is not None:
                handed += self._land()  # commits land in order: the last one before this one is written
            handed += self._commit(batch, work, now, looked, full, claimed)
        except LeaseLost as lost:
            self._forgetting.clear()  # refused whole: those attempts still report here
            self.drop(lost.instance_ids, work)
            return 1
        except StoreError as error:
            self._keep_for_later(error, work)
            return int(self._landing is not None)  # a commit still in flight is not idle
        return len(outcomes) + len(work) + handed + (self._landing is not None)

    def _sort_outcomes(self, outcomes: list[Outcome], held: Collection[str], work: Work) -> None:
        """Each outcome to its instance's work; those of ``held`` instances wait for the next step.
        An outcome is counted here; if its step's commit fails, ``_keep_for_later`` takes it back."""
        stats = self.stats
        for outcome in outcomes:
            task = self.in_flight.get(outcome.task_id)
            if task is None:
                continue
            if task.instance_id in held:
                self._pending.append(outcome)
                continue
            del self.in_flight[outcome.task_id]
            work[task.instance_id].outcomes.append((task, outcome))
            stats.count(outcome.ok, outcome.retry_delay)

    def _context(self, now: float) -> StepContext:
        landing = self._landing
        return StepContext(
            reads=self.store,
            codec=self.project.codec,
            cache=self.cache,
            log=self.log,
            now=now,
            decision_timeout=self.decision_timeout,
            in_flight_ids=landing.claimed_ids if landing is not None else NO_CUSTOM_IDS,
            see_commit_in_flight=self.see_commit_in_flight,
            forget_task=self._forget_task,
            timezone=self.timezone,
        )

    def _forget_task(self, task_id: str) -> None:
        """An attempt still running reports to no one once this step's commit lands (a rewind
        cancelled its task); until then, and if the commit fails, it still does."""
        if task_id in self.in_flight:
            self._forgetting.add(task_id)

    def _commit(
        self, batch: Batch, work: Work, now: float, looked: bool, full: bool, claimed: AbstractSet[CustomId]
    ) -> int:
        """Write the step and claim tasks; in the background while results may come meanwhile.
        Returns how many tasks went to the workers."""
        limit = self.lookout.claim_limit(looked, batch, self._free_slots())
        only_added = self.lookout.only_added(looked, batch)
        # A rewind also writes to children that cannot be named without a read: not in the background.
        background = (
            self.background_commits
            and bool(batch.ops)
            and not batch.rewinds
            and not self._forgetting
            and self.runner.busy() > 0
        )
        started = time.perf_counter()
        pending = self.store.commit_step(batch, now, limit, only_added=only_added, background=background)
        if not pending.landed:
            held = set(work).union(batch.posts_to)  # the instances whose rows it writes
            lines = self._take_lines()
            self._landing = Landing(pending, batch, work, held, claimed, lines, now, looked, full, limit, started)
            return 0
        tasks = pending.wait()
        for task_id in self._forgetting:
            self.in_flight.pop(task_id, None)
        self._forgetting.clear()
        self._count(work, batch, tasks, started)
        self.lookout.after_step(batch, now, looked, full, limit, len(tasks))
        self._committed(self._take_lines())
        return self._hand_off(tasks)

    def settle(self) -> int:
        """Land the commit in flight, if any, and hand its tasks to the workers; how many."""
        if self._landing is None:
            return 0
        try:
            return self._land()
        except LeaseLost as lost:
            self.drop(lost.instance_ids)
            return 0
        except StoreError:
            return 0

    def see_commit_in_flight(self) -> bool:
        """Let the store's reads show the commit in flight, if any (whatever it freed); it is
        handed on later, as usual. False: there was none."""
        if self._landing is None:
            return False
        self.store.settle()
        return True

    def _land(self) -> int:
        """Wait for the commit in flight; hand its claimed tasks to the workers."""
        landing = self._landing
        assert landing is not None
        try:
            claimed = landing.pending.wait()
        except LeaseLost:  # refused whole: the caller drops what was lost, the rest waits for a step
            self._landing = None  # its log lines go with it: what it decided is decided again
            self._retry_later(landing.work)
            raise
        except StoreError as error:
            self._landing = None
            self._keep_for_later(error, landing.work)
            raise
        self._landing = None
        self._count(landing.work, landing.batch, claimed, landing.started)
        self.lookout.after_step(landing.batch, landing.now, landing.looked, landing.full, landing.limit, len(claimed))
        self._committed(landing.lines)
        return self._hand_off(claimed)

    def _count(self, work: Work, batch: Batch, claimed: list[TaskRecord], started: float) -> None:
        """A commit landed: its latency and its instance steps (its task attempts were counted
        as they were sorted into the step)."""
        if batch.ops or claimed:  # else nothing was written
            self.stats.committed(time.perf_counter() - started)
            self.stats.steps += len(work)

    def _take_lines(self) -> list[str]:
        lines = self._lines[:]
        self._lines.clear()
        return lines

    def _committed(self, lines: list[str]) -> None:
        if self.store_failure is not None:
            self.emit("the store accepts writes again; carrying on")
            self.store_failure = None
        for line in lines:
            self.emit(line)

    def _hand_off(self, claimed: list[TaskRecord]) -> int:
        if claimed:
            attempts = [self._attempt(task) for task in claimed]  # may read the store: before in_flight
            for task in claimed:
                self.in_flight[task.id] = task
            self.runner.submit_many(attempts)
        return len(claimed)

    def _look(self, now: float, work: Work) -> bool:
        """Fire due schedules, take instances no daemon drives (a store shared by several
        daemons), gather due timers and ready instances; True if there may be more."""
        fire_due(self.store, self.project.codec, now, self.emit)  # committed as it goes; its instances are ready below
        # As many as the free workers could start (at least one: a busy daemon still takes its
        # share); those with work are among the ready, the timers and the queued tasks below.
        limit = min(self.ready_limit, max(self.runner.free_slots(), 1)) if self.claiming else 0
        claimed = self.store.claim_instances(limit)
        if claimed.taken_over:
            self.emit(
                LogLine(
                    f"took over {claimed.taken_over} instance(s) from daemons whose lease ran out;"
                    f" {claimed.requeued} task(s) in flight re-queued",
                    event="instances_taken_over",
                )
            )
        timers = self.store.due_timers(now, self.batch_limit)
        for timer in timers:
            work[timer.instance_id].timers.append(timer)
        ready = self.store.ready_instances(self.ready_limit)
        for instance_id in ready:
            work[instance_id].ready = True
        more_to_claim = limit > 0 and len(claimed.ids) >= limit
        return len(timers) >= self.batch_limit or len(ready) >= self.ready_limit or more_to_claim

    def drop(self, instance_ids: Collection[str], work: Work | None = None) -> None:
        """Another daemon took these instances over (their step was refused whole: ``LeaseLost``).
        Forget them: their runs, their task attempts (still running ones end, their outcomes
        are discarded), their inputs; keep this step's other inputs for the next step."""
        lost = set(instance_ids)
        for instance_id in lost:
            self.cache.evict(instance_id)
        gone = {task_id for task_id, task in self.in_flight.items() if task.instance_id in lost}
        for task_id in gone:
            del self.in_flight[task_id]
        self._pending = [o for o in self._pending if o.task_id not in gone]
        kept: Work = {}
        for instance_id, inputs in (work or {}).items():
            if instance_id not in lost:
                kept[instance_id] = inputs
                continue
            for _, outcome in inputs.outcomes:  # counted as they were sorted into the step
                self.stats.uncount(outcome.ok, outcome.retry_delay)
        self._lines.clear()  # what the refused step decided is decided again
        self._retry_later(kept)
        self.lookout.store_failed()  # look again: the others' inputs are still in the store
        self.stats.instances_lost += len(lost)
        self.emit(LogLine(f"lost {len(lost)} instance(s) to another daemon", event="instances_lost", level="warning"))

    def drop_everything(self) -> int:
        """The lease ran out (the daemon froze past it): every instance held may be another
        daemon's now. Forget them all; how many runs were held."""
        self.settle()
        held = len(self.cache)
        self.cache.clear()
        self.in_flight.clear()
        self._pending = []
        self._lines.clear()
        self.lookout.store_failed()
        return held

    def _keep_for_later(self, error: StoreError, work: Work) -> None:
        """A write failed (disk full, read-only store): nothing of this step is kept in memory
        that the store does not have; results wait in memory, inputs in the store, for a retry."""
        if self.store_failure is None:
            self.emit(f"cannot write to the store: {error}; nothing committed is lost, retrying")
        self.store_failure = error
        self._lines.clear()  # what it decided is decided (and logged) again
        self.lookout.store_failed()
        self._retry_later(work)
        self._forgotten_in_doubt |= self._forgetting
        self._forgetting.clear()
        self._in_doubt = True

    def _settle_doubt(self) -> bool:
        """A commit failed, and may have landed all the same (a session lost while COMMIT ran, a
        disk reporting an error after the write). Before the next step: a result it carried that
        the store holds already (its task is no longer running that attempt) is dropped, not
        recorded twice; the tasks it claimed, running in the store with no worker here, go back to
        the queue; an attempt it forgot (a rewind cancelled its task) is forgotten if the store has
        its task no longer running it, else still awaited. False: the store still fails (the next
        step tries again)."""
        self.settle()  # a commit still in flight hands its tasks out first: they are not orphans
        kept = [self.in_flight[o.task_id] for o in self._pending if o.task_id in self.in_flight]
        kept += [self.in_flight[i] for i in self._forgotten_in_doubt if i in self.in_flight]
        try:
            running = self.store.running_attempts([task.id for task in kept])
            recorded = {task.id for task in kept if running.get(task.id) != task.attempts}
            self.store.recover(keep=set(self.in_flight) - recorded)
        except StoreError:
            return False
        for task_id in recorded:
            del self.in_flight[task_id]
        for outcome in self._pending:
            if outcome.task_id in recorded:  # the landed commit's, counted as it landed
                self.stats.count(outcome.ok, outcome.retry_delay)
        self._pending = [outcome for outcome in self._pending if outcome.task_id not in recorded]
        self._forgotten_in_doubt.clear()
        self._in_doubt = False
        return True

    def _retry_later(self, work: Work) -> None:
        """A step was not written: its runs may have moved past the store (evicted), its task
        outcomes wait in memory for the next step, its other inputs are still in the store."""
        kept = []
        for instance_id, inputs in work.items():
            self.cache.evict(instance_id)  # its run may have moved past what the store holds
            for task, outcome in inputs.outcomes:
                self.in_flight[task.id] = task
                kept.append(outcome)
                self.stats.uncount(outcome.ok, outcome.retry_delay)  # counted again when it is sorted again
        self._pending[:0] = kept  # before the results of the same instances that came later

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Step until nothing is left to do now (tests; time only moves with the clock)."""
        rounds = 0
        while rounds < max_rounds:
            rounds += 1
            if self.step() == 0 and self.runner.busy() == 0 and not self._pending:
                return rounds
        raise RuntimeError(f"engine still busy after {max_rounds} rounds")

    def take_outcomes(self, outcomes: list[Outcome]) -> None:
        """Outcomes gathered outside step() (graceful shutdown) for the next step."""
        self._pending.extend(outcomes)

    def _activate(self, ctx: StepContext, instance: Instance, inputs: Inputs, inbox: list[InboxItem] | None) -> Batch:
        """One instance's writes, in a batch of its own: a failure stays with its instance."""
        batch = Batch()
        lines, created = len(self._lines), len(ctx.created)
        try:
            if instance.kind is Kind.TASK:
                TaskActivation(ctx, instance, batch).run(inputs.outcomes, inbox)
            else:
                WorkflowActivation(ctx, instance, batch).run(inputs.outcomes, inputs.timers, inbox)
            return batch
        except Exception as error:  # a bug of ours or a user hook we did not expect to raise
            del self._lines[lines:]  # what it decided is thrown away with its batch
            del ctx.created[created:]  # and the instances it created
            ctx.decided.pop(instance.id, None)
            message = f"internal error while deciding: {error!r}"
            self.log(
                LogLine(message, event="internal_error", level="error", instance_id=instance.id, name=instance.name)
            )
            self.cache.evict(instance.id)
            batch = Batch()
            WorkflowActivation(ctx, instance, batch).contain(error, inputs.outcomes, inputs.timers, inbox)
            return batch

    def _free_slots(self) -> int:
        return min(self.runner.free_slots(), self.batch_limit) if self.claiming else 0

    def _attempt(self, task: TaskRecord) -> Attempt:
        env = self.envs.get(task.instance_id)
        if env is None:
            instance = self.store.get_instance(task.instance_id)
            env = instance.env if instance else ""
        return Attempt(task.id, task.instance_id, env, task.name, task.data, task.retry_index, self._max_time(task))

    def _max_time(self, task: TaskRecord) -> float | None:
        """The task's max_processing_time(); the task is only decoded when its class defines one."""
        cls = self.project.classes.get(task.name)
        if cls is not None and getattr(cls, "max_processing_time", None) is Task.max_processing_time:
            return None
        try:
            limit = self.project.codec.decode(task.data).max_processing_time()
        except Exception:  # the attempt itself will report what is wrong with the task
            return None
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
            return float(limit)
        return None
