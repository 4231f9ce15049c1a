"""Parameter files: the content, not the name, decides the format (a pickle is refused unless
allowed); files that are not parameter files give one line naming the file; values that do not
fit the destination dtype are refused naming the key."""
import gzip
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from fastdl.nets import MultiLayerNet, TwoLayerNet, read_meta
from tests.files.conftest import same_params, small


@pytest.mark.parametrize("name", ["params.pkl", "params.npz", "params", "params.bin"])
def test_save_and_load_round_trip_under_any_name(tmp_path, name):
    net = small(0)
    net.save_params(tmp_path / name, meta={"net": "mlp"})
    assert os.listdir(tmp_path) == [name]                     # no suffix added, no temporary left
    assert (tmp_path / name).read_bytes()[:4] == b"PK\x03\x04"  # always an npz, never a pickle
    other = small(1)
    other.load_params(tmp_path / name)
    assert same_params(other.params, net.params)
    meta = read_meta(tmp_path / name)
    assert meta["net"] == "mlp" and meta["dtype"] == "float64"
    assert meta["model"]["class"] == "MultiLayerNet"          # added by save_params, for load_model


@pytest.mark.parametrize("name,protocol", [("book.pkl", None), ("book.npz", None), ("book", 0), ("b.bin", 2)])
def test_a_pickle_is_refused_unless_allowed(tmp_path, name, protocol):
    net = small(0)
    p = tmp_path / name
    with open(p, "wb") as f:
        pickle.dump({k: v * 2 for k, v in net.params.items()}, f, protocol=protocol)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="allow_pickle=True") as e:
        net.load_params(p)
    assert str(p) in str(e.value) and "pickle" in str(e.value) and "\n" not in str(e.value)
    assert same_params(net.params, before)                    # nothing changed by the refusal
    assert read_meta(p) == {}                                 # read_meta never unpickles
    net.load_params(p, allow_pickle=True)
    assert same_params(net.params, {k: v * 2 for k, v in before.items()})


def _bad_files(tmp_path):
    """name -> bytes of files that are not parameter files for small()."""
    buf = io.BytesIO()
    small().save_params(tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    os.unlink(tmp_path / "good.npz")
    out = {"empty": b"", "truncated.npz": good[: len(good) // 2], "head-only.npz": good[:10],
           "image.png": b"\x89PNG\r\n\x1a\n" + bytes(200), "notes.txt": b"W1 = 1, 2, 3\n",
           "gzipped.gz": gzip.compress(b"hello")}
    np.save(buf, np.zeros(3))
    out["array.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, W1=np.array([{}], dtype=object))
    out["objects.npz"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "a zip, not an npz")
    out["foreign.zip"] = buf.getvalue()
    # params of other networks (names and shapes are what must fit: a TwoLayerNet(4, 3, 2) has the
    # very arrays of small() and loads into it)
    for name, net in (("two-layer.npz", TwoLayerNet(5, 3, 2)),
                      ("deeper.npz", MultiLayerNet(input_size=4, hidden_size_list=[3, 3], output_size=2)),
                      ("wider.npz", MultiLayerNet(input_size=5, hidden_size_list=[3], output_size=2))):
        net.save_params(tmp_path / name)
        out[name] = (tmp_path / name).read_bytes()
        os.unlink(tmp_path / name)
    nan = small()
    nan.params["W1"][0, 0] = np.nan
    nan.save_params(tmp_path / "nan.npz")
    out["nan.npz"] = (tmp_path / "nan.npz").read_bytes()
    os.unlink(tmp_path / "nan.npz")
    pk = pickle.dumps(dict(small().params))
    out["truncated.pkl"] = pk[: len(pk) // 2]
    out["list.pkl"] = pickle.dumps([1, 2, 3])
    out["strings.pkl"] = pickle.dumps({"W1": "abc", "b1": 1, "W2": None, "b2": [1, [2]]})
    return out


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, allow_pickle):
    net = small()
    before = {k: v.copy() for k, v in net.params.items()}
    for name, data in _bad_files(tmp_path).items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError) as e:
            net.load_params(p, allow_pickle=allow_pickle)
        msg = str(e.value)
        assert str(p) in msg and "\n" not in msg, (name, msg)
        assert same_params(net.params, before), name
    with pytest.raises(FileNotFoundError, match="no such file"):
        net.load_params(tmp_path / "missing.npz", allow_pickle=allow_pickle)
    with pytest.raises(IsADirectoryError, match="folder"):
        net.load_params(tmp_path, allow_pickle=allow_pickle)


def test_read_meta_errors_name_the_file(tmp_path):
    for name, data in _bad_files(tmp_path).items():
        p = tmp_path / name
        p.write_bytes(data)
        if data[:4] == b"PK\x03\x04" and name not in ("truncated.npz", "head-only.npz"):
            # readable npz: no metadata, or only what save_params records of its own
            assert set(read_meta(p)) in (set(), {"model", "dtype"}), name
        elif name.endswith(".pkl"):
            assert read_meta(p) == {}, name
        else:
            with pytest.raises(ValueError) as e:
                read_meta(p)
            assert str(p) in str(e.value) and "\n" not in str(e.value), name
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_meta(tmp_path / "missing.npz")


@pytest.mark.parametrize("value", [1e300, -1e39, 3.5e38])
def test_a_value_beyond_float32_is_refused_naming_the_key(tmp_path, value):
    big = TwoLayerNet(5, 3, 2)
    big.params["b2"][1] = value                          # finite in float64, infinite in float32
    big.save_params(tmp_path / "big.npz")
    net = TwoLayerNet(5, 3, 2, dtype=np.float32)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=r"big.npz: b2 does not fit in float32") as e:
        net.load_params(tmp_path / "big.npz")
    assert "\n" not in str(e.value)
    assert same_params(net.params, before)               # nothing loaded, not even W1
    wide = TwoLayerNet(5, 3, 2)
    wide.load_params(tmp_path / "big.npz")              # float64 takes it
    assert wide.params["b2"][1] == value


def test_float32_max_and_float64_values_that_fit_load_into_float32(tmp_path):
    net = TwoLayerNet(5, 3, 2)
    net.params["b2"][:] = [float(np.finfo(np.float32).max), 1e-300]   # the max, and an underflow to 0
    net.save_params(tmp_path / "p.npz")
    small32 = TwoLayerNet(5, 3, 2, dtype=np.float32)
    small32.load_params(tmp_path / "p.npz")
    assert small32.params["b2"][0] == np.finfo(np.float32).max and small32.params["b2"][1] == 0
