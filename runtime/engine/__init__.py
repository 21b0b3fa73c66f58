"""One engine step: collect inputs, activate each instance, commit one batch, hand out tasks.

Owns deciding what happens next to an instance and writing it as one batch. A workflow
activation and a task activation journal through one helper and apply decisions through one
applier; they see a small step context, never the engine.

Modules: ``engine`` (the loop of steps, background commits), ``context`` (the step context and
the run cache), ``workflow_activation`` and ``task_activation``, ``journaling`` (the journal
helper), ``decisions`` (the decision applier), ``rewind_step`` and ``rewind_plan`` (rewinds),
``lookout`` (when to look for new work), ``stats`` (the counters the daemon publishes). May
import every lower layer (``errors``, ``models``, ``project``, ``replay``, ``store``,
``instances``, ``timing``, ``pool``), never ``client`` or ``daemon``.
"""
