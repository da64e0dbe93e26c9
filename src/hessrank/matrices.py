"""Names shared by every layer: the three matrices, their column suffixes, the methods."""

#: the loss Hessian, its outer-product (Gauss–Newton) part and its functional part, in table order
MATRICES = ("H_L", "H_o", "H_F")
#: the suffix of each matrix in stored column names (``rank_L``, ``pred_o``, ``gap_F``)
SUFFIX = {"H_L": "L", "H_o": "o", "H_F": "F"}

#: how a run computes its ranks
DENSE = "dense"
MATRIX_FREE = "matrix-free"
AUTO = "auto"
METHODS = (AUTO, DENSE, MATRIX_FREE)

#: how the rank of H_o is taken: the nK×nK Gram matrix, the p×p AᵀA, or a sketch
H_O_GRAM = "gram"
H_O_SQUARE = "square"
H_O_SKETCH = "sketch"
H_O_PATHS = (H_O_GRAM, H_O_SQUARE, H_O_SKETCH)
