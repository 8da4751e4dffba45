from __future__ import annotations

from collections.abc import Iterator

import pytest

from rotator.kube import load_api_client
from rotator.sandbox.kube_server import KubeServer
from tests.engine.harness import CountingKube, EngineBench


@pytest.fixture
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineBench]:
    with KubeServer(pod_delay=0.01) as server:
        kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
        api = load_api_client(str(kubeconfig))
        try:
            yield EngineBench(server, CountingKube(api))
        finally:
            api.close()
