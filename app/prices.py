"""The price table (setting ``prices_file``): what a call costs by its tokens, per model.

With a table, a call without ``cost_usd`` is priced from its tokens, and a call whose reported cost
differs from the table by more than ``tolerance`` (relative) is counted as a mismatch, by model;
calls of a model without a price are counted too. Prices are US dollars per million tokens:

    tolerance: 0.02
    prices:
      - model: gpt-4o-mini
        input: 0.15
        output: 0.60
        cache_read: 0.075        # optional, default: input
      - model: claude-3-5-haiku
        provider: anthropic      # optional: only for this provider
        input: 0.80
        output: 4.00
        cache_read: 0.08
        cache_write: 1.00        # optional, default: input

A call pays ``input`` for its prompt tokens that were neither read from nor written to the cache,
``cache_read`` for ``cached_tokens``, ``cache_write`` for ``cache_write_tokens``, and ``output`` for
its output tokens (reasoning tokens included). ``deploy/prices.example.yml`` is an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

PER_TOKENS = 1_000_000
MAX_PRICES = 10_000
UsdPerMillion = Annotated[float, Field(ge=0, le=1_000_000)]


class Price(BaseModel):
    """The price of one model (from one provider, or any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    provider: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    input: UsdPerMillion
    output: UsdPerMillion
    cache_read: UsdPerMillion | None = None
    cache_write: UsdPerMillion | None = None

    def cost(
        self, input_tokens: int, output_tokens: int, cached_tokens: int, cache_write_tokens: int
    ) -> float:
        """US dollars a call with these tokens costs."""
        uncached = input_tokens - cached_tokens - cache_write_tokens
        cache_read = self.input if self.cache_read is None else self.cache_read
        cache_write = self.input if self.cache_write is None else self.cache_write
        return (
            uncached * self.input
            + cached_tokens * cache_read
            + cache_write_tokens * cache_write
            + output_tokens * self.output
        ) / PER_TOKENS


class PriceTable(BaseModel):
    """The table: prices by model and provider, and how far a reported cost may differ."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: Annotated[float, Field(ge=0, le=1)] = 0.02
    prices: Annotated[list[Price], Field(max_length=MAX_PRICES)]
    _by_key: dict[tuple[str, str | None], Price] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_price_each(self) -> PriceTable:
        seen: set[tuple[str, str | None]] = set()
        for index, price in enumerate(self.prices):
            key = (price.model, price.provider)
            if key in seen:
                where = f" from {price.provider}" if price.provider else ""
                raise ValueError(f"prices[{index}]: a second price for {price.model}{where}")
            seen.add(key)
        return self

    def model_post_init(self, _: object) -> None:
        # By (model, provider), and by (model, None) for the prices of any provider.
        self._by_key = {(price.model, price.provider): price for price in self.prices}

    def price(self, model: str, provider: str) -> Price | None:
        """The price of ``model`` from ``provider``, else its price from any provider."""
        return self._by_key.get((model, provider)) or self._by_key.get((model, None))

    def is_mismatch(self, reported: float, computed: float) -> bool:
        """Whether a reported cost differs from the table's by more than the tolerance."""
        return abs(reported - computed) > self.tolerance * max(reported, computed)


class PricesError(ValueError):
    """The price table cannot be used; the message names the file and the entry."""


def load_prices(path: Path) -> PriceTable:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise PricesError(f"{path}: {err}") from err
    try:
        return PriceTable.model_validate(document)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the file"
        raise PricesError(f"{path}: {where}: {problem['msg'].removeprefix('Value error, ')}") from err
