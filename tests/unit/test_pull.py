"""`data pull`: download over HTTP, check md5, unpack atomically; failures leave nothing half-written."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from retrieval_lab.cli import main as cli_main
from retrieval_lab.data import load_dataset, pull
from retrieval_lab.errors import DataError
from tests.unit.test_data_errors import make_beir


def beir_zip(tmp_path: Path) -> bytes:
    folder = make_beir(tmp_path / "src" / "toyset")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"toyset/{path.relative_to(folder)}")
    return buf.getvalue()


class Server:
    """Serves `body` on 127.0.0.1; `claimed_length` lets a test fake a connection cut short."""

    def __init__(self, body: bytes, claimed_length: int | None = None):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(outer.claimed_length or len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.body, self.claimed_length = body, claimed_length
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_port}/toyset.zip"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_pull_downloads_checks_md5_and_unpacks(tmp_path):
    body = beir_zip(tmp_path)
    with Server(body) as url:
        dest = pull("toyset", url, tmp_path / "data", hashlib.md5(body).hexdigest())
    assert dest == tmp_path / "data" / "toyset"
    assert len(load_dataset(dest).corpus) == 2
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["toyset"]


def test_wrong_md5_leaves_nothing(tmp_path):
    with Server(beir_zip(tmp_path)) as url:
        with pytest.raises(DataError, match="md5 mismatch"):
            pull("toyset", url, tmp_path / "data", "0" * 32)
    assert list((tmp_path / "data").iterdir()) == []


def test_truncated_download_leaves_nothing(tmp_path):
    body = beir_zip(tmp_path)
    with Server(body[: len(body) // 2], claimed_length=len(body)) as url:
        with pytest.raises(DataError, match="truncated|download failed"):
            pull("toyset", url, tmp_path / "data", hashlib.md5(body).hexdigest())
    assert list((tmp_path / "data").iterdir()) == []


def test_not_a_zip_leaves_nothing(tmp_path):
    with Server(b"<html>not found</html>") as url:
        with pytest.raises(DataError, match="not a valid zip"):
            pull("toyset", url, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_cli_pull_and_list(tmp_path, capsys):
    body = beir_zip(tmp_path)
    with Server(body) as url:
        assert cli_main(["data", "pull", "toyset", "--root", str(tmp_path / "data"), "--url", url,
                         "--md5", hashlib.md5(body).hexdigest()]) == 0
    assert cli_main(["data", "list", "--root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "toyset" in out and "test: 2 q / 2 qrels" in out


def test_cli_pull_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    assert cli_main(["data", "pull", "nosuchset", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'nosuchset'" in capsys.readouterr().err


def test_pull_reads_the_url_of_a_dataset_option_as_run_does(tmp_path, capsys):
    from retrieval_lab.cli import main as cli_main

    assert cli_main(["data", "pull", "r_manuals", "--root", str(tmp_path)]) == 2  # a folder option: nothing to pull
    assert "dataset 'r_manuals' has no download URL" in capsys.readouterr().err
