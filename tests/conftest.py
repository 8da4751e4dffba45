pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.kube", "tests.fixtures.rotation"]
