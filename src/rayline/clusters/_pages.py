"""Following the Cluster Manager's pages (``limit``/``offset``) from the client."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["PAGE_SIZE", "collect"]

T = TypeVar("T")

# The largest page the manager serves (its routes refuse a larger limit).
PAGE_SIZE = 1000


def collect(
    fetch: Callable[[int, int], list[T]],
    *,
    key: Callable[[T], Hashable] | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> list[T]:
    """Every item of a paged list, or the first ``limit``, asking page after page.

    Args:
        fetch: ``fetch(limit, offset)`` returns one page.
        key: an item's identity; an item seen on an earlier page is skipped (rows
            added while paging shift later pages of a newest-first list). None:
            keep every item (lists that are only appended to).
        limit: at most this many items; None: all of them.
        page_size: items asked per page.

    Returns:
        The items in the server's order.
    """
    items: list[T] = []
    seen: set[Hashable] = set()
    offset = 0
    while limit is None or len(items) < limit:
        wanted = page_size if limit is None else min(page_size, limit - len(items))
        page = fetch(wanted, offset)
        offset += len(page)
        for item in page:
            if key is None:
                items.append(item)
            elif (identity := key(item)) not in seen:
                seen.add(identity)
                items.append(item)
        if len(page) < wanted:  # a short page is the last one
            break
    return items if limit is None else items[:limit]
