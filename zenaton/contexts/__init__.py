from .task_context import TaskContext
from .workflow_context import WorkflowContext

__all__ = ["TaskContext", "WorkflowContext"]
