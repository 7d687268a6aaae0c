"""Realm configuration: the typed schema, RFC 7396 merge patch, and the generation store.

Layering: ``schema`` (types, defaults, validation) and ``merge_patch`` (a pure
algorithm) depend on nothing else here; ``store`` builds ``set``/``patch`` with a
cross-process generation compare-and-swap on top of both.
"""

from meerkat.config.merge_patch import apply_merge_patch as apply_merge_patch
from meerkat.config.schema import AgentConfig as AgentConfig
from meerkat.config.schema import BudgetConfig as BudgetConfig
from meerkat.config.schema import Config as Config
from meerkat.config.schema import LimitsConfig as LimitsConfig
from meerkat.config.schema import MockConfig as MockConfig
from meerkat.config.schema import RestConfig as RestConfig
from meerkat.config.schema import RetryConfig as RetryConfig
from meerkat.config.schema import ToolsConfig as ToolsConfig
from meerkat.config.schema import config_from_dict as config_from_dict
from meerkat.config.schema import config_to_dict as config_to_dict
from meerkat.config.store import LOCK_TIMEOUT_SECS as LOCK_TIMEOUT_SECS
from meerkat.config.store import ConfigEnvelope as ConfigEnvelope
from meerkat.config.store import ConfigStore as ConfigStore
from meerkat.config.store import FileConfigStore as FileConfigStore
from meerkat.config.store import MemoryConfigStore as MemoryConfigStore

__all__ = [
    "AgentConfig",
    "BudgetConfig",
    "Config",
    "ConfigEnvelope",
    "ConfigStore",
    "FileConfigStore",
    "LOCK_TIMEOUT_SECS",
    "LimitsConfig",
    "MemoryConfigStore",
    "MockConfig",
    "RestConfig",
    "RetryConfig",
    "ToolsConfig",
    "apply_merge_patch",
    "config_from_dict",
    "config_to_dict",
]
