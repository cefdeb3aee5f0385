"""The back office's Events page: failed deliveries, their replay, and the health panel."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.shop_support import Browser, add_payment, paid_cart, store
from tests.webhook_support import charge, event, refund


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_a_failed_event_is_shown_and_replayed_through_the_same_path_as_the_command(admin, shop) -> None:
    from flask_psp_connector.domain.payment import TransactionState as S
    from flask_psp_connector.domain.payment import TransactionType as T

    payment = add_payment(shop, paid_cart(Browser(shop)), states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    refunded = event("charge.refunded", charge(payment.interface_id, refunds=[refund("re_admin", payment.interface_id, 500)]))
    store(shop).record_event_failure(refunded["id"], refunded["type"], "PlatformUnavailable: down", json.dumps(refunded))

    page = text(admin.get("/admin/events"))
    assert f'data-failure="{refunded["id"]}"' in page and "PlatformUnavailable: down" in page and "Failing" in page
    assert re.search(r'data-failing><span class="state state-failed">1<', page)
    assert "not in use" in page  # no Commerce Layer outbox configured

    assert admin.post(f"/admin/events/{refunded['id']}/replay", csrf=False).status_code == 400  # CSRF
    done = admin.post(f"/admin/events/{refunded['id']}/replay", follow_redirects=True)

    assert f"Replayed {refunded['id']}: processed." in text(done)
    assert "Resolved" in text(done) and re.search(r'data-failing><span class="state state-paid">0<', text(done))
    [refund_tx] = store(shop).get_payment(payment.id).transactions_of(T.REFUND)
    assert (refund_tx.interaction_id, refund_tx.amount.cent_amount) == ("re_admin", 500)


def test_the_events_page_is_behind_the_back_office_login(shop) -> None:
    browser = Browser(shop)
    assert browser.get("/admin/events").status_code == 303
    assert browser.post("/admin/events/evt_1/replay").status_code == 303
