"""Integer class labels: the same ranks as their one-hot targets for every loss; bad labels refused."""

import numpy as np
import pytest

from hessrank import ConfigError, hessian_ranks
from hessrank.data import encode_targets


@pytest.mark.parametrize("loss", ["mse", "cross", "cosh"])
def test_integer_labels_give_the_ranks_of_one_hot_targets(loss, net, samples):
    f, params = net()
    X, labels = samples(8, 3, 3)
    by_label = hessian_ranks(f, params, X, labels, loss=loss)
    one_hot = hessian_ranks(f, params, X, encode_targets(labels, 3), loss=loss)
    assert by_label.K == one_hot.K == 3
    for m in ("H_L", "H_o", "H_F"):
        assert by_label.ranks[m].rank == one_hot.ranks[m].rank, m
        np.testing.assert_allclose(by_label.ranks[m].eigenvalues, one_hot.ranks[m].eigenvalues, rtol=1e-12,
                                   atol=1e-14)


def test_labels_outside_the_classes_are_refused(net, samples):
    f, params = net()
    X, labels = samples(8, 3, 3)
    for Y, kw, match in ((labels - 1, {}, "Y=-1: class labels must be in 0..K-1"),
                         (labels, {"num_classes": 2}, "Y=2: class labels must be in 0..K-1 with K = num_classes = 2"),
                         (encode_targets(labels, 3), {"num_classes": 4}, "num_classes=4: the targets Y have K = 3"),
                         (labels, {"num_classes": 0}, "num_classes=0")):
        with pytest.raises(ConfigError, match=match) as err:
            hessian_ranks(f, params, X, Y, **kw)
        assert "\n" not in str(err.value)
