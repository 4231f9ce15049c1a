"""fastdl.explain of a network on the cuda backend: the page's numbers (arrays brought to the
host) are the reference backend's, the gradient check runs on the reference backend, and the
training dynamics train a copy on the device; the caller's network stays there, unchanged."""
import json
import re

import numpy as np

import fastdl
from fastdl.nets import SimpleConvNet

CU = fastdl.backend.ops("cuda")


def data_of(page):
    return json.loads(re.search(r'id="fastdl-data">(.*?)</script>', page, re.S).group(1))


def test_explain_a_network_on_the_device():
    np.random.seed(0)
    net = SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=4,
                        output_size=3, weight_init_std=0.3)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 1, 6, 6)), np.array([0, 2, 1])
    with fastdl.using_backend("numpy"):
        ref = data_of(fastdl.explain(net, x, t, path=None))
    net.to("cuda")
    before = {k: CU.to_host(v).copy() for k, v in net.params.items()}
    with fastdl.using_backend("cuda"):
        d = data_of(fastdl.explain(net, x, t, path=None, steps=1))
    assert d["backend"] == "cuda" and d["gradcheck"]["backend"] == "numpy" and d["gradcheck"]["ok"]
    assert d["loss"] == ref["loss"] or abs(d["loss"] - ref["loss"]) < 1e-10
    for mine, theirs in zip(d["layers"], ref["layers"]):
        for k, g in theirs["grads"].items():
            np.testing.assert_allclose(mine["grads"][k]["values"], g["values"], rtol=1e-9, atol=1e-12)
    assert len(d["training"]["loss"]) == 1
    assert net.device == "cuda" and all(CU.owns(v) for v in net.params.values())
    for k, v in net.params.items():
        np.testing.assert_array_equal(CU.to_host(v), before[k])
