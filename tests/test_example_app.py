"""The integrator's front door: the example host app, as the README quotes and runs it.

The example is installed into a fresh virtualenv from this checkout (no editable
install, no test tools) and its whole checkout is driven in sandbox mode, as a browser
would: the cart, the checkout session, ``/payments``, the payment confirmed through the
sandbox's Stripe API (what Stripe.js does), ``/confirmPayments`` and the webhook's order.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import venv
from pathlib import Path

import pytest
import requests

from flask_psp_connector.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "host_app"


def readme_blocks(language: str) -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Using the extension\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_the_readme_quotes_the_example_as_it_is() -> None:
    source = (EXAMPLE / "app.py").read_text()
    blocks = readme_blocks("python")
    assert len(blocks) == 3
    for block in blocks:
        assert block in source, block
    [page] = readme_blocks("html")
    assert page in (EXAMPLE / "templates" / "pay.html").read_text()
    [command] = readme_blocks("bash")
    assert command.startswith("python examples/host_app/app.py")


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the package installed from this checkout, with the sandbox extra."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(home)
    python = home / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", f"{ROOT}[sandbox]"],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    output = installed.stdout + installed.stderr
    assert not re.search(r"BuildBackendWarning|SetuptoolsDeprecationWarning|absent from the `packages`", output), output
    return python


def test_the_example_pays_end_to_end_in_sandbox_mode_from_a_fresh_install(fresh_python: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(port)}
    server = subprocess.Popen([str(fresh_python), str(EXAMPLE / "app.py")], cwd=tmp_path, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout.readline().strip() == (  # type: ignore[union-attr]
            f"Sandbox mode: open {base} and pay with 4242 4242 4242 4242.")
        browser = requests.Session()
        for _ in range(100):
            try:
                browser.get(base, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        browser.post(f"{base}/cart/mug", timeout=10)
        browser.post(f"{base}/cart/mug", timeout=10)
        browser.post(f"{base}/cart/tee", timeout=10)
        browser.post(f"{base}/checkout", data={"email": "jane@example.test"}, timeout=10)
        page = browser.get(f"{base}/pay", timeout=10).text
        session_id = re.search(r'data-session-id="([^"]+)"', page)[1]  # type: ignore[index]
        processor = re.search(r'data-processor-url="([^"]+)"', page)[1]  # type: ignore[index]
        cart_id = re.search(r'data-complete-url="/orders/([^"]+)"', page)[1]  # type: ignore[index]
        assert '<script src="/psp-assets/sandbox/stripe.js">' in page
        assert browser.get(f"{base}/psp-assets/psp-payment.js", timeout=10).status_code == 200
        headers = {"X-Session-Id": session_id}

        payment = requests.get(f"{processor}/payments", headers=headers, timeout=30).json()
        assert payment["cartInfo"] == {"amount": 6100, "currency": "EUR"}  # 2 mugs and a tee, from the server
        key = requests.get(f"{processor}/operations/config", headers=headers, timeout=10).json()["publishableKey"]
        intent_id = payment["clientSecret"].split("_secret_")[0]
        card = {"payment_method_data[type]": "card", "payment_method_data[card][number]": "4242424242424242",
                "payment_method_data[card][exp_month]": "12", "payment_method_data[card][exp_year]": "2034",
                "payment_method_data[card][cvc]": "123"}
        paid = requests.post(f"{base}/sandbox/stripe/v1/payment_intents/{intent_id}/confirm",
                             data={"key": key, "client_secret": payment["clientSecret"], **card}, timeout=30).json()
        assert paid["status"] == "succeeded" and paid["amount"] == 6100
        confirmed = requests.post(f"{processor}/confirmPayments/{payment['paymentReference']}",
                                  json={"paymentIntent": intent_id}, headers=headers, timeout=30)
        assert confirmed.json() == {"outcome": "approved"}

        for _ in range(50):
            state = re.search(r"data-order-state>([^<]+)<", browser.get(f"{base}/orders/{cart_id}", timeout=10).text)
            if state and "Paid" in state[1]:
                break
            time.sleep(0.2)
        assert state is not None and state[1].endswith(": Paid, €61.00."), state
        assert "0 items" not in browser.get(base, timeout=10).text
    finally:
        server.terminate()
        server.wait(10)
