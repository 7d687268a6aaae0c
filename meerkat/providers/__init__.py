"""Model providers behind one streaming interface (see :mod:`meerkat.providers.base`)."""

from .base import (
    Provider as Provider,
    ProviderCallError as ProviderCallError,
    ProviderItem as ProviderItem,
    ProviderRequest as ProviderRequest,
    ReasoningChunk as ReasoningChunk,
    StopChunk as StopChunk,
    TextChunk as TextChunk,
    ToolCallChunk as ToolCallChunk,
    ToolSpec as ToolSpec,
    UsageReport as UsageReport,
)
from .mock import MockProvider as MockProvider
from .retry import RetryPolicy as RetryPolicy
from .registry import (
    DEFAULT_MODEL as DEFAULT_MODEL,
    KNOWN_PROVIDERS as KNOWN_PROVIDERS,
    ProviderPool as ProviderPool,
    build_provider as build_provider,
    effective_provider_params as effective_provider_params,
    register_provider as register_provider,
    resolve_model as resolve_model,
    validate_provider_params as validate_provider_params,
)

__all__ = [
    "Provider", "ProviderCallError", "ProviderItem", "ProviderRequest", "ReasoningChunk", "StopChunk",
    "TextChunk", "ToolCallChunk", "ToolSpec", "UsageReport", "MockProvider", "DEFAULT_MODEL",
    "KNOWN_PROVIDERS", "build_provider", "register_provider", "resolve_model", "validate_provider_params",
    "effective_provider_params", "ProviderPool", "RetryPolicy",
]
