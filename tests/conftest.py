pytest_plugins = [
    "tests.fixtures.figures",
    "tests.fixtures.servers",
    "tests.fixtures.kube",
    "tests.fixtures.rotation",
]
