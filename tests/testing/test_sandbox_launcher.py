"""``python -m flask_psp_connector.testing``: the Stripe API double, with no inside knowledge needed."""

from __future__ import annotations

import subprocess
import sys

import requests

from flask_psp_connector.testing import free_port


def test_the_launcher_prints_what_an_app_needs_and_serves_the_double() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "flask_psp_connector.testing", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [process.stdout.readline() for _ in range(10)]  # type: ignore[union-attr]
        text = "".join(banner)
        base = f"http://127.0.0.1:{port}"
        assert f"Stripe API double on {base}" in text
        assert f"STRIPE_API_BASE={base}" in text and "STRIPE_SECRET_KEY=sk_test_sandbox_local" in text
        assert "psp post-deploy" in text and f"stripe trigger payment_intent.succeeded --api-base {base}" in text
        for _ in range(100):
            try:
                answer = requests.get(f"{base}/v1/payment_intents", auth=("sk_test_sandbox_local", ""), timeout=1)
                break
            except requests.ConnectionError:
                process.poll()
                assert process.returncode is None, process.stderr.read()  # type: ignore[union-attr]
        assert answer.status_code == 200 and answer.json()["object"] == "list"
    finally:
        process.terminate()
        process.wait(10)


def test_without_the_sandbox_extra_the_launcher_says_so_in_one_line() -> None:
    code = ("import sys; sys.modules['localstripe'] = None\n"
            "from flask_psp_connector.testing.__main__ import run\nrun(['--port', '1'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "The Stripe API double needs the sandbox extra: pip install 'flask-psp-connector[sandbox]'\n"
