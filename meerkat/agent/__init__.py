"""The agent: the turn loop and the tools it can call."""

from .loop import RunFailure as RunFailure, RunSettings as RunSettings, RunState as RunState, run_loop as run_loop
from .tools import (
    Tool as Tool,
    ToolOutput as ToolOutput,
    ToolRegistry as ToolRegistry,
    builtin_tools as builtin_tools,
    datetime_tool as datetime_tool,
)

__all__ = ["RunFailure", "RunSettings", "RunState", "run_loop", "Tool", "ToolOutput", "ToolRegistry",
           "builtin_tools", "datetime_tool"]
