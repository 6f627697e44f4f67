"""Following the manager's pages: every item once, in order, never past the limit."""

from __future__ import annotations

from rayline.clusters._pages import collect


def server(items: list[int]) -> tuple[list[tuple[int, int]], object]:
    asked: list[tuple[int, int]] = []

    def fetch(limit: int, offset: int) -> list[int]:
        asked.append((limit, offset))
        return items[offset : offset + limit]

    return asked, fetch


def test_pages_are_asked_until_a_short_one() -> None:
    asked, fetch = server(list(range(25)))

    assert collect(fetch, page_size=10) == list(range(25))  # type: ignore[arg-type]
    assert asked == [(10, 0), (10, 10), (10, 20)]


def test_an_exact_multiple_costs_one_empty_page() -> None:
    asked, fetch = server(list(range(20)))

    assert collect(fetch, page_size=10) == list(range(20))  # type: ignore[arg-type]
    assert asked[-1] == (10, 20)


def test_the_limit_shrinks_the_last_page() -> None:
    asked, fetch = server(list(range(100)))

    assert collect(fetch, limit=15, page_size=10) == list(range(15))  # type: ignore[arg-type]
    assert asked == [(10, 0), (5, 10)]


def test_rows_shifted_onto_the_next_page_are_kept_once() -> None:
    pages = {0: [5, 4, 3], 3: [3, 2, 1], 6: [1]}  # a new row pushed 3 and 1 along

    result = collect(lambda limit, offset: pages[offset], key=lambda x: x, page_size=3)

    assert result == [5, 4, 3, 2, 1]
