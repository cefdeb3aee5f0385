"""The gateway store on SQLite and PostgreSQL: first answer wins, settle once, claim once."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask_psp_connector.gateways.store import GatewayStore
from flask_psp_connector.platforms.embedded.schema import utcnow
from flask_psp_connector.ports import Answer, CallbackSettlement


def test_concurrent_answers_for_one_key_keep_the_first(platform) -> None:
    store = GatewayStore(platform.database)
    kept: list[Answer] = []
    barrier = threading.Barrier(6)

    def answer(n: int) -> None:
        barrier.wait()
        kept.append(store.record_answer("cl-authorize-ep-100-EUR", Answer(200, {"n": n})))

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({a.body["n"] for a in kept}) == 1
    assert store.answer("cl-authorize-ep-100-EUR") == kept[0]


def test_settle_enqueues_one_callback_and_claim_is_exclusive(platform) -> None:
    store = GatewayStore(platform.database)
    assert store.settle("unknown", "https://cl.test/cb", "{}") == CallbackSettlement.UNKNOWN
    store.record_answer("sync", Answer(200, {}))
    assert store.settle("sync", "https://cl.test/cb", "{}") == CallbackSettlement.NOT_PENDING
    store.record_answer("async", Answer(202, {}, action_id="pi_1"))
    assert store.settle("async", "https://cl.test/cb", '{"a":1}') == CallbackSettlement.ENQUEUED
    assert store.settle("async", "https://cl.test/cb", '{"a":2}') == CallbackSettlement.ALREADY_SETTLED
    now = utcnow()
    [due] = store.due_callbacks(now)
    assert (due.action_id, due.payload, due.attempts) == ("pi_1", '{"a":1}', 0)
    assert store.claim(due, now + timedelta(seconds=30))
    assert not store.claim(due, now + timedelta(seconds=30))  # another worker's stale view
    assert store.due_callbacks(now) == []
    store.mark_delivered("pi_1")
    assert store.pending_callbacks() == [] and store.callback("pi_1") is None
