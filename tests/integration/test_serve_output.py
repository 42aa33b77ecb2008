"""What `leafdoc serve` prints: which model version it serves, with which file (an operator reads this first)."""

import httpx


def test_serve_says_which_model_version_and_file_it_serves(live_server):
    answer = httpx.get(f"{live_server.base}/readyz", timeout=10).json()
    line = f"serving model version {answer['model_version']} with its {answer['model_file']}"
    assert line in live_server.log.read_text()
