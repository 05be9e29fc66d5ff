"""The stand-in CuPy's NCCL binding takes what CuPy 14's does: ``get_unique_id`` returns bytes and
``NcclCommunicator(ndev, commId, rank)`` takes only bytes of 128 (cupy_backends/cuda/libs/nccl.pyx at
v14.2.0: get_unique_id, "Previously this returned a tuple of integers", lines 159-169;
``__init__(self, int ndev, bytes commId, int rank, NcclConfig config=None)``, lines 323-331). The fake
returned and demanded a tuple, CuPy 13's form, so code converting the id to a tuple would pass here."""
import pytest

from gpubp._compat import cupy_import_error, has_cupy

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"the fake reads CuPy's names: CuPy is not installed "
                                                      f"({cupy_import_error})")


@pytest.fixture(scope="module")
def nccl():
    import fake_cupy
    return fake_cupy.cuda.nccl


def test_the_unique_id_is_bytes_and_the_communicator_takes_only_bytes(nccl):
    uid = nccl.get_unique_id()
    assert isinstance(uid, bytes) and len(uid) == 128
    comm = nccl.NcclCommunicator(1, uid, 0)
    comm.destroy()
    with pytest.raises(TypeError, match="expected bytes, got tuple"):
        nccl.NcclCommunicator(1, tuple(uid), 0)
    with pytest.raises(ValueError, match="commId length 127"):
        nccl.NcclCommunicator(1, uid[:-1], 0)
