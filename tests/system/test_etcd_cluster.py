"""The etcd backend on a real 3-member cluster (failover, watch resume on another member) and on
a TLS member (client certificates required; plaintext and unknown clients refused)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from intent.etcd_conn import EtcdTls
from intent.store import Compare, Put, StoreError, StoreUnavailable
from intent.store_etcd import EtcdStore
from tests.etcd_server import EtcdCluster, EtcdServer, etcd_binary
from tests.system.conftest import free_port
from topologies.certs import Authority

pytestmark = [pytest.mark.system]


@pytest.fixture
def cluster(tmp_path: Path):
    if etcd_binary() is None:
        pytest.fail("etcd is not installed (apt-get install etcd-server)")
    c = EtcdCluster(tmp_path, [(free_port(), free_port()) for _ in range(3)]).start()
    yield c
    c.stop()


def test_calls_move_to_the_next_member_when_one_dies(cluster: EtcdCluster):
    leader = cluster.leader()
    urls = [leader.url] + [u for u in cluster.urls if u != leader.url]
    store = EtcdStore(",".join(urls), timeout=3.0)
    try:
        store.put("/t/a", "1")
        assert store.url == leader.url
        leader.stop(kill=True)
        # a read goes to the next member at once; the new leader takes writes
        assert store.get("/t/a").value == "1"
        assert store.url != leader.url
        for _ in range(50):
            try:
                store.put("/t/b", "2")
                break
            except StoreUnavailable:  # no leader yet: the caller retries
                continue
        assert store.get("/t/b").value == "2"
        leader.start()
        assert EtcdStore(leader.url).get("/t/b").value == "2"  # the old leader caught up
    finally:
        store.close()


def test_unreachable_cluster_names_every_member(free_port):
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    store = EtcdStore(",".join(urls), connect_timeout=0.5)
    with pytest.raises(StoreUnavailable) as err:
        store.get("/x")
    assert all(f"{u}: connection refused" in str(err.value) for u in urls)


def _create(store: EtcdStore, key: str, value: str) -> None:
    """Create-only, retried until it is known to be there (a retry after a lost answer cannot
    write twice: the compare fails)."""
    for _ in range(200):
        try:
            store.txn([Compare(key, "version", "=", 0)], [Put(key, value)])
            return
        except StoreUnavailable:
            pass
        try:
            kv = store.get(key)
        except StoreUnavailable:
            continue
        if kv is not None:
            return
    raise AssertionError(f"{key} could not be written")


def test_watch_resumes_on_another_member_without_loss_or_repeat(cluster: EtcdCluster):
    leader = cluster.leader()
    urls = [leader.url] + [u for u in cluster.urls if u != leader.url]
    store = EtcdStore(",".join(urls), timeout=3.0)
    watcher_store = EtcdStore(",".join(urls), timeout=3.0)
    watcher = watcher_store.watch("/seq/")
    got: list[str] = []
    errors: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        try:
            for ev in watcher:
                got.append(ev.value or "")
                if len(got) >= 300:
                    break
        except StoreError as exc:
            errors.append(exc)
        done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        for i in range(300):
            if i == 100:  # the watch streams from the leader: kill it
                leader.stop(kill=True)
            if i == 200:
                leader.start()
                cluster.leader().stop(kill=True)  # and the next leader too
            _create(store, f"/seq/{i:04d}", str(i))
        assert done.wait(30), f"watch delivered {len(got)} of 300"
        assert errors == []
        assert got == [str(i) for i in range(300)]
        assert watcher.reconnects >= 1
    finally:
        watcher.close()
        store.close()
        watcher_store.close()


def test_tls_member_serves_certified_clients_only(tmp_path: Path):
    if etcd_binary() is None:
        pytest.fail("etcd is not installed (apt-get install etcd-server)")
    ca = Authority(tmp_path / "tls")
    server_files, client_files = ca.issue("etcd"), ca.issue("client")
    other = Authority(tmp_path / "other-ca").issue("intruder")
    server = EtcdServer(tmp_path, free_port(), free_port(), tls=server_files).start()
    try:
        assert server.url.startswith("https://")
        good = EtcdStore(server.url, tls=EtcdTls(str(client_files.ca), str(client_files.cert),
                                                 str(client_files.key)))
        good.put("/tls/a", "yes")
        assert good.get("/tls/a").value == "yes"
        good.close()
        # plaintext HTTP to the TLS port: refused
        plain = EtcdStore(server.url.replace("https://", "http://"), connect_timeout=1)
        with pytest.raises(StoreUnavailable):
            plain.get("/tls/a")
        # TLS without a client certificate: refused by the member
        anonymous = EtcdStore(server.url, tls=EtcdTls(str(client_files.ca)), connect_timeout=1)
        with pytest.raises(StoreUnavailable) as err:
            anonymous.get("/tls/a")
        assert "TLS handshake failed" in str(err.value)
        # a client certificate from another CA: refused; and it does not trust the member
        intruder = EtcdStore(server.url, tls=EtcdTls(str(other.ca), str(other.cert),
                                                     str(other.key)), connect_timeout=1)
        with pytest.raises(StoreUnavailable) as err:
            intruder.get("/tls/a")
        assert "certificate verify failed" in str(err.value)
    finally:
        server.stop()


def test_tls_options_are_checked_before_any_request(tmp_path: Path):
    with pytest.raises(StoreError, match="--etcd-key"):
        EtcdStore("https://127.0.0.1:1", tls=EtcdTls(cert=str(tmp_path / "c.pem")))
    with pytest.raises(StoreError, match=r"--etcd-ca .*: no such file"):
        EtcdStore("https://127.0.0.1:1", tls=EtcdTls(ca=str(tmp_path / "missing.pem")))
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(StoreError, match="is not https://"):
        EtcdStore("http://127.0.0.1:1", tls=EtcdTls(ca=str(tmp_path / "ca.pem")))


class AnswerEater:
    """A TCP relay to etcd that can lose one write: ``eat_answer`` forwards the next write
    (a request carrying ``request_put``) and drops the connection instead of its answer;
    ``eat_request`` drops the connection before the write reaches etcd."""

    def __init__(self, target_port: int) -> None:
        import socket

        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mode: str | None = None
        self.eaten: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client, server) -> None:
        import select

        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], 30)
                if not ready:
                    return
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    if b"request_put" in data and self.mode == "request":
                        self.mode = None
                        self.eaten.append("request")
                        return
                    server.sendall(data)
                    if b"request_put" in data and self.mode == "answer":
                        self.mode = None
                        server.recv(65536)  # etcd's answer: it committed; nobody hears it
                        self.eaten.append("answer")
                        return
                if server in ready:
                    data = server.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.listener.close()


def test_a_write_whose_answer_was_lost_is_applied_once(etcd: EtcdServer):
    """allocator.write over a connection that loses a commit's answer (or its request): the
    write looks for its own write id and neither writes twice nor loses the change."""
    from allocator.write import apply_config
    from intent import keys
    from intent.loader import load_document

    relay = AnswerEater(etcd.client_port)
    store = EtcdStore(f"http://127.0.0.1:{relay.port}", timeout=3.0)
    try:
        doc = {"Tenants": [{"Name": "t", "DefaultNetType": "vxlan", "SubnetPool": "10.9.0.0/16",
                            "AllocSubnetLen": 24, "Vxlans": "100-200",
                            "Networks": [{"Name": "n", "Endpoints": [{"Container": "c0"}]}]}]}
        apply_config(store, load_document(doc), "add")
        for i, mode in enumerate(("answer", "request", "answer"), start=1):
            relay.mode = mode
            doc["Tenants"][0]["Networks"][0]["Endpoints"] = [{"Container": f"c{i}"}]
            result = apply_config(store, load_document(doc), "add")
            assert result.changed and relay.mode is None  # it went through the relay's trap
        assert relay.eaten == ["answer", "request", "answer"]
        ips = store.snapshot(keys.alloc_ip_prefix("n")).items
        owners = sorted(__import__("json").loads(kv.value)["owner"] for kv in ips.values())
        assert owners == ["n-c0", "n-c1", "n-c2", "n-c3"]  # each exactly once
        assert len({kv.key for kv in ips.values()}) == 4
    finally:
        store.close()
        relay.close()
