pytest_plugins = [
    "tests.fixtures.figures",
    "tests.fixtures.servers",
    "tests.fixtures.kube",
    "tests.fixtures.realkube",
    "tests.fixtures.kube_backends",
    "tests.fixtures.rotation",
    "tests.fixtures.ordering",
]
