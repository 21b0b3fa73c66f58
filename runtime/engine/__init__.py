"""One engine step: collect inputs, activate each instance, commit one batch, hand out tasks.

Owns deciding what happens next to an instance and writing it as one batch. A workflow
activation and a task activation journal through one helper and apply decisions through one
applier; they see a small step context, never the engine. May import every lower layer
(``models``, ``timing``, ``project``, ``replay``, ``store``, ``pool``'s records), never
``client`` or ``daemon``.
"""
