#!/usr/bin/python3
"""Golden NIR files for tests/snn/nir_test.cpp, written with h5py + numpy, independently of spikefm.

Regenerate (Debian: apt-get install python3-h5py python3-numpy; use the system python3):
    /usr/bin/python3 tests/snn/nir_golden.py tests/snn/data

It writes two files holding the same Sinabs-style CNN (shared/NIR.md; the layout of
paper/02_cnn/cnn_sinabs.nir of the NIR repository):

    input (Input, shape [2, 6, 6])
    -> conv (Conv2d, weight (4, 2, 3, 3), bias (4,), stride 1, padding 1, dilation 1, groups 1)
    -> if1 (IF, r = 1, v_threshold = 1, v_reset = 0; per neuron (4, 6, 6))
    -> pool (SumPool2d, kernel 2, stride 2, padding 0) -> (4, 3, 3)
    -> flat (Flatten, start_dim 0, end_dim -1) -> (36,)
    -> fc (Affine, weight (3, 36), bias (3,))
    -> if2 (IF, r = 1, v_threshold = [1, 1.5, 2], v_reset = 0)
    -> output (Output, shape [3])

Parameter values (flat row-major index i; all multiples of 1/16, so every sum below is exact in
float32 and float64 and the C++ test can compare spikes exactly):
    conv.weight[i] = ((5 i) mod 9 - 4) / 8          conv.bias[c] = (c - 1.5) / 8
    fc.weight[i]   = ((7 i) mod 11 - 3) / 16        fc.bias[o]   = o / 16

nir_cnn_main.nir   -- as nir.write of NIR main (2026-01, NIR.md §2, §7, §8) writes it:
    /version "1.0.7" vlen; numpy arrays gzip-compressed (level 4, chunked); tuples/ints plain
    int64; Conv2d stride/padding/dilation expanded to pairs; v_reset written (>= 1.0.6); edges a
    plain (E, 2) vlen UTF-8 dataset. Plus a root group /spikefm_golden that NIR readers ignore:
    input (S, 2, 6, 6) float32 binary spikes (numpy default_rng(0), p = 0.3), S = 10, and output
    (S, 3) float32 = the spikes of if2 from the numpy reference below (forward Euler, dt = 1:
    v <- v + x; z = v > v_threshold; v <- v_reset where z; v(0) = 0; all nodes in one step).

nir_cnn_legacy.nir -- the same network as older exporters and hand-made files write it:
    /version "0.2.0"; every string fixed-length (NULLPAD; padding "same" SPACEPAD), edges an
    (E, 2) fixed-length full-width 'S' array; contiguous uncompressed datasets; no v_reset; Conv2d padding
    given as the string "same" and stride/dilation as int64 scalars; Flatten without input_type
    and end_dim; node attributes, a metadata group (float, string and a bool that a reader may
    skip), and an unknown root dataset.
"""
import pathlib
import sys

import h5py
import numpy as np

EDGES = [("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"),
         ("flat", "fc"), ("fc", "if2"), ("if2", "output")]


def parameters():
    conv_w = ((np.arange(4 * 2 * 3 * 3) * 5) % 9 - 4).reshape(4, 2, 3, 3) / 8.0
    conv_b = (np.arange(4) - 1.5) / 8.0
    fc_w = ((np.arange(3 * 36) * 7) % 11 - 3).reshape(3, 36) / 16.0
    fc_b = np.arange(3) / 16.0
    th2 = np.array([1.0, 1.5, 2.0])
    return conv_w, conv_b, fc_w, fc_b, th2


def reference(x_steps):
    """Numpy forward pass of the network, one sample, S steps."""
    conv_w, conv_b, fc_w, fc_b, th2 = parameters()
    v1 = np.zeros((4, 6, 6))
    v2 = np.zeros(3)
    out = []
    for x in x_steps:
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        c = np.zeros((4, 6, 6))
        for co in range(4):
            for i in range(6):
                for j in range(6):
                    c[co, i, j] = conv_b[co] + np.sum(conv_w[co] * xp[:, i:i + 3, j:j + 3])
        v1 += c
        z1 = v1 > 1.0
        v1[z1] = 0.0
        p = z1.astype(np.float64).reshape(4, 3, 2, 3, 2).sum(axis=(2, 4))
        f = fc_w @ p.reshape(-1) + fc_b
        v2 += f
        z2 = v2 > th2
        v2[z2] = 0.0
        out.append(z2.astype(np.float32))
    return np.stack(out)


def write_main(path):
    conv_w, conv_b, fc_w, fc_b, th2 = parameters()
    f32 = np.float32
    gz = dict(compression="gzip")  # h5py default level 4, as nir.write on main

    def arr(group, name, value):
        group.create_dataset(name, data=value, dtype=value.dtype, **gz)

    def text(group, name, value):
        group.create_dataset(name, data=value, dtype=h5py.string_dtype())

    with h5py.File(path, "w") as f:
        text(f, "version", "1.0.7")
        g = f.create_group("node")
        text(g, "type", "NIRGraph")
        n = g.create_group("nodes")
        nd = n.create_group("input")
        text(nd, "type", "Input")
        arr(nd, "shape", np.array([2, 6, 6], dtype=np.int64))
        nd = n.create_group("conv")
        text(nd, "type", "Conv2d")
        arr(nd, "input_shape", np.array([6, 6], dtype=np.int64))
        arr(nd, "weight", conv_w.astype(f32))
        arr(nd, "bias", conv_b.astype(f32))
        nd.create_dataset("stride", data=(1, 1))
        nd.create_dataset("padding", data=(1, 1))
        nd.create_dataset("dilation", data=(1, 1))
        nd.create_dataset("groups", data=1)
        for name, shape, th in (("if1", (4, 6, 6), np.ones((4, 6, 6))), ("if2", (3,), th2)):
            nd = n.create_group(name)
            text(nd, "type", "IF")
            arr(nd, "r", np.ones(shape, dtype=f32))
            arr(nd, "v_threshold", th.astype(f32))
            arr(nd, "v_reset", np.zeros(shape, dtype=f32))
        nd = n.create_group("pool")
        text(nd, "type", "SumPool2d")
        arr(nd, "kernel_size", np.array([2, 2], dtype=np.int64))
        arr(nd, "stride", np.array([2, 2], dtype=np.int64))
        arr(nd, "padding", np.array([0, 0], dtype=np.int64))
        nd = n.create_group("flat")
        text(nd, "type", "Flatten")
        arr(nd, "input_type", np.array([4, 3, 3], dtype=np.int64))
        nd.create_dataset("start_dim", data=0)
        nd.create_dataset("end_dim", data=-1)
        nd = n.create_group("fc")
        text(nd, "type", "Affine")
        arr(nd, "weight", fc_w.astype(f32))
        arr(nd, "bias", fc_b.astype(f32))
        nd = n.create_group("output")
        text(nd, "type", "Output")
        arr(nd, "shape", np.array([3], dtype=np.int64))
        g.create_dataset("edges", data=EDGES)  # a list of str tuples: plain (E, 2) vlen UTF-8

        x = (np.random.default_rng(0).random((10, 2, 6, 6)) < 0.3).astype(f32)
        gold = f.create_group("spikefm_golden")
        gold.attrs["note"] = "not NIR: expected behaviour for tests/snn/nir_test.cpp"
        gold.create_dataset("input", data=x)
        gold.create_dataset("output", data=reference(x.astype(np.float64)))


# Fixed-length strings are written full width (no padding byte), as numpy 'S' arrays are: a reader
# that converts through a NULLTERM memory type of the same width would drop their last character.


def fixed(group, name, value, size=None, pad=h5py.h5t.STR_NULLPAD):
    """A scalar fixed-length ASCII string with the given padding."""
    raw = value.encode("ascii")
    size = size or len(raw)  # full width: no terminating byte
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(pad)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    dsid = h5py.h5d.create(group.id, name.encode(), tid, space)
    filler = b" " if pad == h5py.h5t.STR_SPACEPAD else b"\0"
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(raw.ljust(size, filler), dtype="S%d" % size), mtype=tid)


def write_legacy(path):
    conv_w, conv_b, fc_w, fc_b, th2 = parameters()
    with h5py.File(path, "w") as f:
        fixed(f, "version", "0.2.0")
        f.create_dataset("exporter_notes", data=np.arange(3))  # unknown root object
        g = f.create_group("node")
        g.attrs["created_by"] = "hand-made legacy variant"
        fixed(g, "type", "NIRGraph", size=16)
        n = g.create_group("nodes")
        nd = n.create_group("input")
        fixed(nd, "type", "Input", size=10)
        nd.create_dataset("shape", data=np.array([2, 6, 6], dtype=np.int64))
        nd = n.create_group("conv")
        fixed(nd, "type", "Conv2d")
        nd.attrs["framework"] = "sinabs"
        nd.create_dataset("input_shape", data=np.array([6, 6], dtype=np.int64))
        nd.create_dataset("weight", data=conv_w)  # float64: the float dtype is free (NIR.md §4)
        nd.create_dataset("bias", data=conv_b.astype(np.float32))
        nd.create_dataset("stride", data=np.int64(1))
        fixed(nd, "padding", "same", size=8, pad=h5py.h5t.STR_SPACEPAD)
        nd.create_dataset("dilation", data=np.int64(1))
        nd.create_dataset("groups", data=np.int64(1))
        for name, shape, th in (("if1", (4, 6, 6), np.ones((4, 6, 6))), ("if2", (3,), th2)):
            nd = n.create_group(name)
            fixed(nd, "type", "IF")
            nd.create_dataset("r", data=np.ones(shape, dtype=np.float32))
            nd.create_dataset("v_threshold", data=th.astype(np.float32))
        m = n["if1"].create_group("metadata")
        m.create_dataset("dt", data=1.0)
        fixed(m, "reset", "zero")
        m.create_dataset("soft", data=np.bool_(False))  # an HDF5 enum: readers may skip it
        nd = n.create_group("pool")
        fixed(nd, "type", "SumPool2d")
        nd.create_dataset("kernel_size", data=np.array([2, 2], dtype=np.int64))
        nd.create_dataset("stride", data=np.array([2, 2], dtype=np.int64))
        nd.create_dataset("padding", data=np.array([0, 0], dtype=np.int64))
        nd = n.create_group("flat")
        fixed(nd, "type", "Flatten")
        nd.create_dataset("start_dim", data=np.int64(0))
        nd = n.create_group("fc")
        fixed(nd, "type", "Affine")
        nd.create_dataset("weight", data=fc_w.astype(np.float32))
        nd.create_dataset("bias", data=fc_b.astype(np.float32))
        nd = n.create_group("output")
        fixed(nd, "type", "Output")
        nd.create_dataset("shape", data=np.array([3], dtype=np.int64))
        g.create_dataset("edges", data=np.array(EDGES, dtype="S"))  # fixed-length, full width (longest name)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "data")
    out.mkdir(parents=True, exist_ok=True)
    write_main(out / "nir_cnn_main.nir")
    write_legacy(out / "nir_cnn_legacy.nir")
    ref = reference((np.random.default_rng(0).random((10, 2, 6, 6)) < 0.3).astype(np.float64))
    print("wrote", out / "nir_cnn_main.nir", out / "nir_cnn_legacy.nir", "; if2 spikes per neuron:",
          ref.sum(axis=0).tolist())


if __name__ == "__main__":
    main()
