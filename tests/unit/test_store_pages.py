"""Pages of stores sized by rows, not stores (issue 16): what a page holds grows with its rows."""
from chalicelib.jobs import distribution
from chalicelib.jobs.distribution import PAGE, PAGE_ROWS, store_pages


class Context:
    """The part of ``JobContext`` ``store_pages`` uses: the checkpointed state."""

    def __init__(self, state=None):
        self.state = dict(state or {})

    def checkpoint(self, **state):
        self.state.update(state)


def pages(rows: dict[str, int], ctx=None):
    return list(store_pages(ctx or Context(), rows, rows.__getitem__))


def test_a_page_holds_stores_until_their_rows_reach_the_bound_and_at_least_one_store():
    third = PAGE_ROWS // 3
    rows = {"S1": third, "S2": third, "S3": third, "S4": third, "S5": 3 * PAGE_ROWS, "S6": 1}
    assert pages(rows) == [["S1", "S2", "S3"], ["S4"], ["S5"], ["S6"]]


def test_small_stores_fill_a_page_up_to_page_stores():
    rows = {f"S{i:03d}": 10 for i in range(2 * PAGE + 1)}
    assert [len(page) for page in pages(rows)] == [PAGE, PAGE, 1]


def test_a_resumed_run_starts_after_the_last_page_it_finished(monkeypatch):
    monkeypatch.setattr(distribution, "PAGE_ROWS", 100)
    ctx = Context()
    walk = store_pages(ctx, ["S3", "S1", "S2", "S4"], {"S1": 60, "S2": 60, "S3": 30, "S4": 80}.__getitem__)
    assert next(walk) == ["S1"]
    assert next(walk) == ["S2", "S3"]
    assert ctx.state == {"after": "S1"}  # checkpointed once the first page was done
    assert pages({"S1": 60, "S2": 60, "S3": 30, "S4": 80}, Context({"after": "S3"})) == [["S4"]]
