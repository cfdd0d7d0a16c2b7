"""Worker for the concurrent allocation test: adds COUNT endpoints one write at a time."""

from __future__ import annotations

import sys

from allocator.write import apply_config
from intent.loader import load_config
from intent.store_etcd import EtcdStore


def main(url: str, worker: int, count: int) -> None:
    store = EtcdStore(url)
    for i in range(count):
        doc = {"Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "10.8.0.0/16",
                            "AllocSubnetLen": 22, "Vxlans": "100-199",
                            "Networks": [{"Name": "race", "Endpoints": [
                                {"Container": f"w{worker}-{i}", "Host": "host1"}]}]}]}
        apply_config(store, load_config(doc), "add")
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
