"""The playground without a browser: its mathematics against chainrule's, its messages
against the schema, and the server's security (status codes, and it keeps serving)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule.nn import Dense, Network
from chainrule.playground.schema import MessageError, parse_message
from chainrule.playground.server import COOKIE, CSP, PlaygroundServer
from chainrule.playground.session import MAX_UPLOAD_BYTES, Session


# --------------------------------------------------------------------------- server fixture
@pytest.fixture(scope="module")
def app():
    a = PlaygroundServer(config={"dataset": "xor", "hidden": [3, 2]}).start()
    yield a
    a.stop()


def request(app, method, path, body=None, headers=None, host=None, cookie=True):
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    h = {"Host": f"127.0.0.1:{app.port}" if host is None else host}
    if cookie:
        h["Cookie"] = f"{app.cookie_name}={app.cookie}"
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def message(app, msg, **kw):
    body = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return request(app, "POST", "/api/message", body,
                   {"Content-Type": "application/json", **kw.pop("headers", {})}, **kw)


def still_serving(app):
    r, _ = request(app, "GET", "/api/state")
    assert r.status == 200


# --------------------------------------------------------------------------- security
def test_token_is_swapped_for_an_httponly_samesite_cookie(app):
    r, _ = request(app, "GET", f"/?token={app.token}", cookie=False)
    assert r.status == 303 and r.getheader("Location") == "/"
    cookie = r.getheader("Set-Cookie")
    assert cookie.startswith(f"{COOKIE}_{app.port}={app.cookie};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert app.token not in cookie
    r, body = request(app, "GET", "/")
    assert r.status == 200 and b"chainrule playground" in body
    csp = r.getheader("Content-Security-Policy")
    assert csp == CSP and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert b"<script>" not in body and b"onclick" not in body.lower()


@pytest.mark.parametrize("path", ["/", "/api/state", "/static/playground.js", "/events",
                                  "/api/export/model", "/?token=wrong", "/?token="])
def test_a_missing_or_wrong_token_gets_403(app, path):
    r, _ = request(app, "GET", path, cookie=False)
    assert r.status == 403
    r, _ = request(app, "GET", path, cookie=False,
                   headers={"Cookie": f"{app.cookie_name}=forged"})
    assert r.status == 403
    still_serving(app)


@pytest.mark.parametrize("host", ["evil.example:80", "127.0.0.1", "127.0.0.1:1",
                                  "localhost.evil.example", ""])
def test_another_host_header_gets_403(app, host):
    r, _ = request(app, "GET", f"/?token={app.token}", host=host, cookie=False)
    assert r.status == 403
    r, _ = request(app, "GET", "/api/state", host=host)
    assert r.status == 403
    still_serving(app)
    r, _ = request(app, "GET", "/api/state", host=f"localhost:{app.port}")
    assert r.status == 200


def test_a_foreign_origin_gets_403_on_the_live_channel_and_posts(app):
    r, _ = request(app, "GET", "/events", headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r, _ = message(app, {"type": "play"}, headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r, _ = message(app, {"type": "pause"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403
    r, _ = message(app, {"type": "pause"}, headers={"Origin": f"http://127.0.0.1:{app.port}"})
    assert r.status == 200
    still_serving(app)


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'"play"', b'{"type": "launch"}', b'{"type": "play", "x": 1}',
    b'{"type": "config", "lr": "0.03"}', b'{"type": "config", "lr": 0.02}',
    b'{"type": "config", "hidden": [4, 9]}', b'{"type": "config", "hidden": [1,1,1,1,1,1,1]}',
    b'{"type": "config", "batch_size": true}', b'{"type": "config", "noise": NaN}',
    b'{"type": "config", "features": []}', b'{"type": "config", "features": ["x1", "x1"]}',
    b'{"type": "config", "features": ["__import__(\'os\')"]}',
    b'{"type": "config", "dataset": "plane"}',         # a regression set for classification
    b'{"type": "select", "layer": 1}', b'{"type": "select", "layer": 9, "neuron": 1}',
    b'{"type": "select", "layer": 1, "neuron": 7}',    # layer 1 has 3 neurons
    b'{"type": "surface", "w1": [1, 1, 1], "w2": [1, 1, 1]}',
    b'{"type": "surface", "w1": "W[0]", "w2": [1, 1, 2]}', b"\xff\xfe",
])
def test_a_malformed_message_gets_400(app, body):
    r, data = message(app, body)
    assert r.status == 400, data
    assert "error" in json.loads(data)
    still_serving(app)


def test_wrong_content_type_length_and_size(app):
    r, _ = request(app, "POST", "/api/message", b'{"type":"play"}',
                   {"Content-Type": "text/plain"})
    assert r.status == 415
    r, _ = message(app, b"x" * (64 * 1024 + 1))
    assert r.status == 413
    still_serving(app)


def test_an_oversized_upload_gets_413_and_a_bad_csv_400(app):
    big = b"x1,x2,label\n" + b"1,2,0\n" * (MAX_UPLOAD_BYTES // 6 + 10)
    r, _ = request(app, "POST", "/api/upload", big, {"Content-Type": "text/csv"})
    assert r.status == 413
    still_serving(app)
    for bad in (b"x1,x2,label\n1,oops,0\n2,3,1\n", b"\x1f\x8b\x08\x00binary",
                b"a,b,c,label\n1,2,3,0\n1,2,3,1\n1,2,3,0\n1,2,3,1\n", b"x1,x2,label\n",
                b"x1,x2,label\n1,2,a\n2,3,b\n3,4,c\n4,5,a\n"):
        r, data = request(app, "POST", "/api/upload", bad, {"Content-Type": "text/csv"})
        assert r.status == 400, data
    still_serving(app)


def test_a_user_csv_becomes_the_dataset(app):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    rows = "\n".join(f"{a},{b},{'yes' if a > b else 'no'}" for a, b in X)
    r, data = request(app, "POST", "/api/upload", f"u,v,label\n{rows}\n".encode(),
                      {"Content-Type": "text/csv"})
    assert r.status == 200, data
    assert json.loads(data)["rows"] == 40
    r, data = request(app, "GET", "/api/state")
    state = json.loads(data)
    assert state["config"]["dataset"] == "csv" and len(state["points"]["X"]) == 40
    r, _ = message(app, {"type": "config", "dataset": "xor", "task": "classification"})
    assert r.status == 200


@pytest.mark.parametrize("path", ["/static/../session.py", "/static/", "/etc/passwd",
                                  "/static/playground.js/../../server.py", "/..%2fserver.py",
                                  "/static/index.html"])
def test_the_file_system_is_never_served(app, path):
    r, _ = request(app, "GET", path)
    assert r.status == 404


# --------------------------------------------------------------------------- the mathematics
def rebuilt(r):
    """An independent Network with the session's weights, from the numbers it sent."""
    sizes, acts = r["sizes"], r["activations"]
    net = Network([Dense(a, b, act) for a, b, act in zip(sizes, sizes[1:], acts)],
                  cost=r["cost"], dtype=np.float64, seed=None)
    net.theta[...] = r["theta"]
    return net


def test_neuron_numbers_are_backprop_numbers():
    s = Session({"dataset": "circle", "hidden": [3, 2], "features": ["x1", "x2", "x1^2"],
                 "activation": "tanh", "lr": 0.1})
    try:
        for _ in range(3):
            s.step()
        s.set_example(5)
        r = s.neuron(1, 2)
        net = rebuilt(r)
        x = np.array([r["example"]["a0"]])
        y = np.array([[r["example"]["y"]]])
        zs, acts = net.forward(x, keep=True)
        g = net.backprop(x, y)
        assert r["equation"] == "BP2"
        assert abs(r["z"] - zs[0][0, 1]) <= 1e-12
        assert abs(r["a"] - acts[1][0, 1]) <= 1e-12
        assert abs(r["delta"] - g.delta[0][0, 1]) <= 1e-12
        # the shown BP2 arithmetic gives the shown delta
        assert abs(r["back"] * r["sigma_prime"] - r["delta"]) <= 1e-12
        assert abs(np.dot(r["w"], r["a_prev"]) + r["b"] - r["z"]) <= 1e-12
        out = s.neuron(3, 1)
        assert out["equation"] == "BP1"
        assert abs(out["grad_a"] * out["sigma_prime"] - out["delta"]) <= 1e-12
        link = s.link(2, 1, 3)
        assert abs(link["a_prev_k"] * link["delta_j"] - link["dC_dw"]) <= 1e-15
        assert abs(link["dC_dw"] - g.dW[1][0, 2]) <= 1e-12
        bw = s.backward()
        assert [rec["layer"] for rec in bw["layers"]] == [3, 2, 1]
        np.testing.assert_allclose(bw["layers"][2]["delta"], g.delta[0][0], atol=1e-12)
    finally:
        s.close()


@pytest.mark.parametrize("mode", ["gd", "sgd", "minibatch"])
def test_each_descent_mode_lowers_the_cost_and_records_its_path(mode):
    s = Session({"dataset": "gauss", "mode": mode, "hidden": [2], "lr": 0.1})
    try:
        before = s.train_loss
        for _ in range(5):
            s.step()
        assert s.train_loss < before
        steps = {"gd": 5, "sgd": 5 * 250, "minibatch": 5 * 25}[mode]
        assert s.steps == steps
        r = s.surface([1, 1, 1], [1, 2, 2], steps=11)
        assert len(r["cost"]) == 11 and len(r["path"]) >= 2
        # the surface passes through the current cost at the current weights
        assert np.isclose(min(min(row) for row in r["cost"]), r["cost_now"], rtol=0.5)
    finally:
        s.close()


def test_regularisation_shrinks_the_weights():
    sizes = []
    for reg in ("none", "L2", "L1"):
        s = Session({"dataset": "circle", "regularization": reg, "reg_rate": 0.3,
                     "lr": 0.1, "hidden": [4]})
        for _ in range(20):
            s.step()
        sizes.append(float(np.abs(s.net.theta * s.net.weight_mask).sum()))
        s.close()
    assert sizes[1] < sizes[0] and sizes[2] < sizes[0]


def test_exported_model_and_data_work_with_evaluate_and_explain(tmp_path, capsys):
    from chainrule.cli import main
    from chainrule.io import load_model

    s = Session({"dataset": "xor", "features": ["x1", "x2", "x1x2", "sin(x1)"],
                 "hidden": [4], "lr": 0.3})
    try:
        for _ in range(30):
            s.step()
        (tmp_path / "m.safetensors").write_bytes(s.export_model())
        (tmp_path / "d.csv").write_bytes(s.export_csv())
        acc = s.net.accuracy(feature_map_all(s), s.y)
    finally:
        s.close()
    net = load_model(tmp_path / "m.safetensors")
    # the map in the file's closed schema; the raw inputs are x1 and x2
    assert net.preprocessing["input_map"] == ["x1", "x2", "x1x2", "sin(x1)"]
    assert net.preprocessing["feature_names"] == ["x1", "x2"]
    assert net.dtype == np.float64 and net.sizes == [4, 4, 1]
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == "x1,x2,label"
    assert main(["evaluate", str(tmp_path / "m.safetensors"), "--dataset",
                 str(tmp_path / "d.csv"), "--target", "label"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {acc * 100:.2f}%" in out
    # explain of raw (1, 2): a^0 is the map's (1, 2, 2, sin 1)
    assert main(["explain", "--model", str(tmp_path / "m.safetensors"), "--input",
                 "1,2"]) == 0
    text = capsys.readouterr().out
    assert "delta" in text.lower() and "0.84147" in text
    (tmp_path / "raw.csv").write_text("x1,x2\n1,2\n-1,0.5\n")
    assert main(["predict", str(tmp_path / "m.safetensors"), str(tmp_path / "raw.csv")]) == 0
    want = net.predict(feature_map_all_of(np.array([[1.0, 2.0], [-1.0, 0.5]]),
                                          net.preprocessing["input_map"]))
    got = capsys.readouterr().out.split()[1:]
    assert [float(v) for v in got] == [float(v) for v in want]


def feature_map_all_of(X, names):
    from chainrule.playground.datasets import feature_map

    return feature_map(X, names)


def feature_map_all(s):
    from chainrule.playground.datasets import feature_map

    return feature_map(s.X_raw, s.config["features"])


def test_parse_message_accepts_the_page_messages():
    assert parse_message(b'{"type": "config", "lr": 0.03, "hidden": [8, 8]}') == {
        "type": "config", "lr": 0.03, "hidden": [8, 8]}
    assert parse_message(b'{"type": "config", "lr": 1}')["lr"] == 1.0
    assert parse_message(b'{"type": "config", "features": ["sin(x2)", "x1"]}')[
        "features"] == ["x1", "sin(x2)"]
    with pytest.raises(MessageError):
        parse_message(b'{"type": "config", "hidden": [true]}')


def test_import_chainrule_does_not_load_the_playground():
    code = ("import sys, chainrule; chainrule.Network; "
            "print(any(m.startswith(('chainrule.playground', 'http.server')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_cli_playground_no_browser_prints_the_address():
    code = ("import threading, sys, chainrule.playground as pg, chainrule.cli as cli\n"
            "import chainrule.playground.server as srv\n"
            "orig = srv.PlaygroundServer.serve_forever\n"
            "srv.PlaygroundServer.serve_forever = lambda self: None\n"
            "sys.exit(cli.main(['playground', '--no-browser']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "http://127.0.0.1:" in r.stdout and "?token=" in r.stdout


def test_a_diverged_network_stops_and_says_why(app):
    s = Session({"dataset": "plane", "task": "regression", "lr": 10.0, "hidden": [8, 8],
                 "activation": "relu", "features": ["x1", "x2", "x1^2", "x2^2", "x1x2"]})
    try:
        for _ in range(20):
            s.step()
            if s.diverged:
                break
        assert s.diverged
        snap = s.snapshot(with_data=False)
        json.dumps(snap, allow_nan=False)            # what the live channel sends
        assert snap["diverged"] and snap["train_loss"] is None
        with pytest.raises(MessageError, match="diverged"):
            s.neuron(1, 1)
        with pytest.raises(MessageError, match="diverged"):
            s.export_model()
        s.reset()
        assert not s.diverged
    finally:
        s.close()


@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral", "moons", "plane",
                                  "multigauss"])
def test_every_dataset_lives_on_the_square(name):
    from chainrule.playground.datasets import CLASSIFY, generate

    X, y = generate(name, 0.2, seed=3)
    assert X.shape == (500, 2) and y.shape == (500,)
    assert np.all(np.abs(X) < 9) and np.all(np.isfinite(y))
    if name in CLASSIFY:
        assert set(np.unique(y)) == {0.0, 1.0}
    np.testing.assert_array_equal(generate(name, 0.2, seed=3)[0], X)   # seeded


def test_no_hidden_layer_and_regression():
    s = Session({"dataset": "plane", "task": "regression", "hidden": [], "lr": 0.01})
    try:
        for _ in range(5):
            s.step()
        assert s.net.sizes == [2, 1] and s.test_acc is None
        r = s.neuron(1, 1)
        assert r["equation"] == "BP1" and r["activation"] == "identity"
        assert abs(r["grad_a"] * r["sigma_prime"] - r["delta"]) <= 1e-15
    finally:
        s.close()


def test_the_live_channel_sends_snapshots_and_nothing_while_paused(app):
    import socket

    sock = socket.create_connection(("127.0.0.1", app.port), timeout=5)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
                 f"Cookie: {app.cookie_name}={app.cookie}\r\n\r\n".encode())
    buf = b""
    while b"\n\n" not in buf.split(b"\r\n\r\n", 1)[-1] or b"data: " not in buf:
        buf += sock.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    assert b"200" in head.split(b"\r\n")[0] and b"text/event-stream" in head
    snap = json.loads(body.split(b"data: ", 1)[1].split(b"\n\n", 1)[0])
    assert "points" in snap and snap["playing"] is False
    sock.settimeout(1.0)
    with pytest.raises(socket.timeout):     # paused: nothing more comes
        while True:
            more = sock.recv(65536)
            assert not more.startswith(b"data: "), more[:80]
    message(app, {"type": "step"})
    sock.settimeout(5)
    assert b"data: " in sock.recv(65536)
    sock.close()
