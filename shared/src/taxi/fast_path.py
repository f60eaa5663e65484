"""The served model, compiled: the registered scikit-learn pipeline as lookup arrays and tree node arrays.

    fast = compile_trip_pipeline(pipeline)    # FastPathError if the pipeline is not the shape it compiles
    fast.predict_trips([trip])                # taxi.trip.Trip objects (or taxi.serving.TripRow) -> minutes, no pandas
    fast.predict(frame)                       # a frame with taxi.model.INPUT_COLUMNS -> minutes
    fast, why = fast_path_for(pipeline)       # compiled *and* checked against the pipeline, or (None, why)

Why: the registered artifact is a scikit-learn Pipeline (MLflow-native; what the registry and the gates see).
Calling it on one trip costs ~20 ms, almost all per-call overhead: pandas feature building, the
ColumnTransformer and TargetEncoder, and HistGradientBoosting's tree-by-tree loop with an OpenMP pool. The
model itself is tiny: three target encodings (one number per zone, per zone pair), an ordinal borough pair,
five numbers, and ~100 trees of at most 31 leaves. Compiled, the same arithmetic costs microseconds:

- **features**: the target encodings become arrays indexed by zone id (and by ``PU * 266 + DO`` for the pair);
  unseen zones get the encoder's target mean, exactly as ``TargetEncoder.transform`` does. The borough pair's
  ordinal code is a table too (-1 for a pair the encoder never saw, as ``OrdinalEncoder`` answers).
- **trees**: QuickScorer (see ``Trees``): each split becomes a bit mask over its tree's leaves, and a row's
  leaf in every tree is found with one ``searchsorted`` per numeric feature and one table lookup for the
  borough pair, for all trees and rows at once. Decisions follow scikit-learn's ``_predict_one_from_raw_data``:
  a numeric split sends x left when ``x <= threshold`` and NaN to its missing side; a categorical split sends
  a known category by its bitset and an unknown, negative or NaN one to its missing side. Leaf values are
  added tree after tree to the baseline, in the order scikit-learn adds them, so the sums are the same floats.
  A batch of 1000 trips takes ~1.5 ms on 2 cores: the masks are uint32 for trees of up to 32 leaves, the leaf
  index is read from a float's exponent rather than a log2, and the working arrays are reused per thread.

What it does not compile (another model kind, another loss, another feature layout) raises ``FastPathError``
naming the difference; ``fast_path_for`` then answers ``None`` and why, and the caller serves the pipeline.
``fast_path_for`` also predicts a check set (a generated month, every borough pair, edge inputs) both ways and
refuses a fast path that differs from the pipeline by more than ``TOLERANCE_MIN`` on any trip.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, TargetEncoder

from taxi.model import _NUMERIC_FEATURES, _ZONE_FEATURES, INPUT_COLUMNS, build_features
from taxi.trip_columns import TripColumns
from taxi.zones import BOROUGHS, N_ZONES, borough_of

log = logging.getLogger("taxi.fast_path")

TOLERANCE_MIN = 1e-6  # the most a compiled prediction may differ from the pipeline's, in minutes
SLOTS = N_ZONES + 1  # arrays indexed by zone id 1..265 (0 unused)
ROW_CHECKS = 300  # trips of the check set also predicted one at a time
_MISSING = 256  # the column of a categorical decision table for NaN, negative or unknown categories


class FastPathError(ValueError):
    """The pipeline cannot be compiled, or its compiled form does not give the same answers."""


ALL_LEAVES = np.uint64(0xFFFFFFFFFFFFFFFF)
MAX_LEAVES = 64  # a tree's leaves are the bits of one uint64
BLOCK_ROWS = 1024  # rows a batch is predicted in at a time (working arrays of ~4 MB for 150 trees, reused)


@dataclass(frozen=True)
class NumericSplits:
    """Every split on one numeric column, sorted by threshold: ``masks[k]`` is, for each tree, the AND of the
    leaf masks of the ``k`` lowest-threshold splits (the ones a value above their threshold sends right)."""

    column: int
    thresholds: np.ndarray  # (m,) ascending
    threshold_list: list[float]  # the same, for ``bisect`` on one row
    masks: np.ndarray  # (m + 1, n_trees) uint64
    missing: np.ndarray  # (n_trees,) the AND for a NaN (the splits whose missing side is right)


@dataclass(frozen=True)
class CategoricalSplits:
    """Every split on one categorical column: ``masks[c]`` is, for each tree, the AND of the leaf masks of the
    splits that send category ``c`` (0..255; _MISSING: NaN, negative or unknown) right."""

    column: int
    masks: np.ndarray  # (_MISSING + 1, n_trees) uint64


@dataclass(frozen=True)
class Trees:
    """A fitted HistGradientBoostingRegressor (squared error), evaluated QuickScorer-style.

    Number each tree's leaves left to right and give every split the mask of all leaves except those of its
    left subtree. A row reaches, in each tree, the leftmost leaf left after AND-ing the masks of the splits it
    goes right at (Lucchese et al., "QuickScorer", SIGIR 2015). Which splits those are is one ``searchsorted``
    per numeric column (a split sends x right when ``x > threshold``) and one table lookup per categorical
    column, for all trees at once, so a batch costs a handful of NumPy calls per feature, not per tree node.
    The masks are uint32 when every tree has at most 32 leaves (half the memory traffic), else uint64."""

    baseline: float
    numeric: tuple[NumericSplits, ...]
    categorical: tuple[CategoricalSplits, ...]
    leaf_values: np.ndarray  # (n_trees, MAX_LEAVES): each tree's leaf values, left to right
    mask_kind: type = np.uint64  # the masks' dtype

    @classmethod
    def from_estimator(cls, hgb: HistGradientBoostingRegressor) -> Trees:
        if type(hgb._loss.link).__name__ != "IdentityLink" or hgb.n_trees_per_iteration_ != 1:
            raise FastPathError(f"only the squared-error loss compiles (this model's loss is {hgb.loss!r})")
        known, feature_row = hgb._bin_mapper.make_known_categories_bitsets()
        trees = [predictor for (predictor,) in hgb._predictors]
        n_trees = len(trees)
        leaf_values = np.zeros((n_trees, MAX_LEAVES))
        numeric: dict[int, list[tuple[float, int, np.uint64, bool]]] = {}
        categorical: dict[int, np.ndarray] = {}
        most_leaves = 0
        for t, predictor in enumerate(trees):
            nodes = predictor.nodes
            splits, leaves = _splits(nodes, leaf_values[t])
            most_leaves = max(most_leaves, leaves)
            for node, lo, mid in splits:
                mask = ALL_LEAVES & ~np.uint64(((1 << (mid - lo)) - 1) << lo)  # all but the left subtree's leaves
                feature = int(nodes[node]["feature_idx"])
                if nodes[node]["is_categorical"]:
                    masks = categorical.setdefault(feature, np.full((_MISSING + 1, n_trees), ALL_LEAVES))
                    goes_left = _category_decisions(nodes[node], predictor.raw_left_cat_bitsets, known, feature_row)
                    masks[~goes_left, t] &= mask
                else:
                    threshold = float(nodes[node]["num_threshold"])
                    numeric.setdefault(feature, []).append(
                        (threshold, t, mask, bool(nodes[node]["missing_go_to_left"]))
                    )
        baseline = float(np.asarray(hgb._baseline_prediction).ravel()[0])
        # the leaves of a tree with at most 32 of them are the low 32 bits: the high ones are always set
        kind = np.uint32 if most_leaves <= 32 else np.uint64
        return cls(
            baseline=baseline,
            numeric=tuple(_numeric_splits(column, splits, n_trees, kind) for column, splits in sorted(numeric.items())),
            categorical=tuple(
                CategoricalSplits(column, masks.astype(kind)) for column, masks in sorted(categorical.items())
            ),
            leaf_values=leaf_values,
            mask_kind=kind,
        )

    def predict_one(self, x: Sequence[float]) -> float:
        """One row of Python floats: ``predict`` without NumPy calls on one-element arrays."""
        alive = np.full(len(self.leaf_values), np.iinfo(self.mask_kind).max, dtype=self.mask_kind)
        for splits in self.numeric:
            v = x[splits.column]
            alive &= splits.missing if v != v else splits.masks[bisect_left(splits.threshold_list, v)]
        for splits in self.categorical:
            v = x[splits.column]
            alive &= splits.masks[int(v) if 0 <= v < _MISSING else _MISSING]  # NaN compares False
        lowest = alive & (~alive + alive.dtype.type(1))  # as _leaf_index, without its working arrays
        leaf = (lowest.astype(np.float64).view(np.int64) >> 52) + self._leaf_offsets
        raw = self.baseline
        for value in self.leaf_values.ravel()[leaf].tolist():  # tree after tree, as in predict
            raw += value
        return raw

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Rows of model features (the ColumnTransformer's output) -> predictions, ``BLOCK_ROWS`` rows at a time."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) <= BLOCK_ROWS:
            return self._predict_block(X)
        return np.concatenate([self._predict_block(X[i : i + BLOCK_ROWS]) for i in range(0, len(X), BLOCK_ROWS)])

    def _predict_block(self, X: np.ndarray) -> np.ndarray:
        n, n_trees = len(X), len(self.leaf_values)
        alive, gathered, leaf, steps = _scratch(n, n_trees, self.mask_kind)
        alive.fill(np.iinfo(self.mask_kind).max)
        for splits in self.numeric:
            x = X[:, splits.column]
            np.take(splits.masks, np.searchsorted(splits.thresholds, x, side="left"), 0, gathered, "clip")
            nan = np.isnan(x)
            if nan.any():
                gathered[nan] = splits.missing
            alive &= gathered
        for splits in self.categorical:
            x = X[:, splits.column]
            valid = (x >= 0) & (x < _MISSING)  # NaN compares False
            codes = np.where(valid, np.where(valid, x, 0).astype(np.int64), _MISSING)
            alive &= np.take(splits.masks, codes, 0, gathered, "clip")
        # each row's leaf value in each tree, one tree per row of ``steps`` (C order), after the baseline
        steps[0] = self.baseline
        leaves = _leaf_index(alive, self._leaf_offsets, gathered, leaf)
        np.take(self.leaf_values.ravel(), leaves.T, out=steps[1:], mode="clip")
        # added tree after tree from the baseline, as scikit-learn adds them: the same floats. NumPy reduces the
        # first axis of a C-ordered array row after row (it sums pairwise only along a contiguous axis, which
        # this is not); test_fast_path checks bit-identical answers on a large batch in case that ever changes.
        return np.add.reduce(steps, axis=0)

    @cached_property
    def _leaf_offsets(self) -> np.ndarray:
        """Added to a float exponent, where tree t's leaves start in ``leaf_values.ravel()`` (see _leaf_index)."""
        return np.arange(len(self.leaf_values)) * MAX_LEAVES - 1023


def _leaf_index(alive: np.ndarray, offsets: np.ndarray, lowest: np.ndarray, leaf: np.ndarray) -> np.ndarray:
    """Where each alive mask's leaf sits in ``Trees.leaf_values.ravel()`` (``lowest``, an array like ``alive``,
    and ``leaf``, float64 of the same shape, are overwritten; the answer is ``leaf``'s memory as int64).

    The leftmost leaf still possible is the lowest set bit, 2**k; as a float64 (exact) its exponent bits hold
    k + 1023: a shift instead of a log2, which costs far more. ``offsets``: ``Trees._leaf_offsets``."""
    np.invert(alive, out=lowest)
    lowest += 1
    lowest &= alive
    np.copyto(leaf, lowest)
    index = leaf.view(np.int64)
    index >>= 52  # the sign bit is 0: what is left is the exponent
    index += offsets
    return index


class _Scratch(threading.local):
    """Each thread's working arrays for ``Trees._predict_block``, by (trees, mask dtype): reused from call to
    call. Arrays of a megabyte and more, allocated afresh, come from new pages of memory each time (the
    allocator hands large freed blocks back to the system), and on a VM the page faults cost several times
    the arithmetic."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[int, type], tuple[np.ndarray, ...]] = {}


_SCRATCH = _Scratch()


def _scratch(rows: int, n_trees: int, kind: type) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(alive, gathered masks, leaf, steps) for ``rows`` <= BLOCK_ROWS rows: views of this thread's arrays."""
    arrays = _SCRATCH.arrays.get((n_trees, kind))
    if arrays is None:
        size = BLOCK_ROWS * n_trees
        arrays = (np.empty(size, kind), np.empty(size, kind), np.empty(size), np.empty(size + BLOCK_ROWS))
        _SCRATCH.arrays[(n_trees, kind)] = arrays
    alive, gathered, leaf, steps = arrays
    shape = (rows, n_trees)
    return (
        alive[: rows * n_trees].reshape(shape),
        gathered[: rows * n_trees].reshape(shape),
        leaf[: rows * n_trees].reshape(shape),
        steps[: (n_trees + 1) * rows].reshape(n_trees + 1, rows),
    )


def _splits(nodes: np.ndarray, leaf_values: np.ndarray) -> tuple[list[tuple[int, int, int]], int]:
    """Walk one tree left to right: fill ``leaf_values`` in leaf order and return, for each split, (node,
    first leaf of its left subtree, first leaf of its right subtree), and the number of leaves."""
    splits: list[tuple[int, int, int]] = []
    leaves = 0

    def walk(node: int) -> None:
        nonlocal leaves
        if nodes[node]["is_leaf"]:
            if leaves >= MAX_LEAVES:
                raise FastPathError(f"a tree has more than {MAX_LEAVES} leaves")
            leaf_values[leaves] = nodes[node]["value"]
            leaves += 1
            return
        first = leaves
        walk(int(nodes[node]["left"]))
        splits.append((node, first, leaves))
        walk(int(nodes[node]["right"]))

    walk(0)
    return splits, leaves


def _numeric_splits(
    column: int, splits: list[tuple[float, int, np.uint64, bool]], n_trees: int, kind: type = np.uint64
) -> NumericSplits:
    splits.sort(key=lambda split: split[0])
    masks = np.full((len(splits) + 1, n_trees), ALL_LEAVES)
    missing = np.full(n_trees, ALL_LEAVES)
    for k, (_, tree, mask, missing_left) in enumerate(splits, start=1):
        masks[k] = masks[k - 1]
        masks[k, tree] &= mask
        if not missing_left:
            missing[tree] &= mask
    thresholds = [split[0] for split in splits]
    return NumericSplits(column, np.array(thresholds), thresholds, masks.astype(kind), missing.astype(kind))


def _category_decisions(node: Any, left_bitsets: np.ndarray, known: np.ndarray, feature_row: np.ndarray) -> np.ndarray:
    """For each category 0..255 (and _MISSING), does this categorical split send it left?"""
    categories = np.arange(_MISSING)
    in_left = (left_bitsets[node["bitset_idx"]][categories // 32] >> (categories % 32)) & 1
    is_known = (known[feature_row[node["feature_idx"]]][categories // 32] >> (categories % 32)) & 1
    missing_left = bool(node["missing_go_to_left"])
    decisions = np.where(in_left.astype(bool), True, np.where(is_known.astype(bool), False, missing_left))
    return np.append(decisions, missing_left)


@dataclass(frozen=True)
class Features:
    """The ColumnTransformer of ``taxi.model.build_model`` (hist_gradient_boosting) as lookup tables."""

    pickup: np.ndarray  # target encoding by zone id
    dropoff: np.ndarray
    pair: np.ndarray  # target encoding by PU * SLOTS + DO
    borough_pair: np.ndarray  # the trees' borough-pair category by PU * SLOTS + DO (NaN: a pair never seen)
    order: tuple[int, ...]  # the trees' column order (HistGradientBoosting puts categorical columns first)

    @classmethod
    def from_transformer(cls, encode: ColumnTransformer, hgb: HistGradientBoostingRegressor) -> Features:
        expected = [
            ("zones", TargetEncoder, _ZONE_FEATURES),
            ("boroughs", OrdinalEncoder, ["borough_pair"]),
            ("numeric", "passthrough", _NUMERIC_FEATURES),
        ]
        actual = [(name, t, list(columns)) for name, t, columns in encode.transformers_ if name != "remainder"]
        shape = [(name, _kind(t), columns) for name, t, columns in actual]
        if shape != expected or _has_remainder(encode):
            raise FastPathError(f"the feature transformer is not the one taxi.model builds: {shape}")
        zones, boroughs = actual[0][1], actual[1][1]
        if zones.target_type_ != "continuous":
            raise FastPathError("the zone encoder's target is not continuous")
        if getattr(boroughs, "unknown_value", None) != -1 or boroughs.handle_unknown != "use_encoded_value":
            raise FastPathError("the borough pair encoder does not code unknown pairs as -1")
        default = float(zones.target_mean_)
        pickup, dropoff = (_zone_table(zones.categories_[i], zones.encodings_[i], default) for i in (0, 1))
        pair = np.full(SLOTS * SLOTS, default)
        for category, encoding in zip(zones.categories_[2], zones.encodings_[2], strict=True):
            pu, _, do = str(category).partition("_")
            if pu.isdigit() and do.isdigit() and int(pu) < SLOTS and int(do) < SLOTS:
                pair[int(pu) * SLOTS + int(do)] = encoding
        codes = {str(c): i for i, c in enumerate(boroughs.categories_[0])}
        borough = dict(zip(range(1, SLOTS), borough_of(list(range(1, SLOTS))), strict=True))
        by_borough_pair = {(a, b): float(codes.get(f"{a}_{b}", -1)) for a in BOROUGHS for b in BOROUGHS}
        borough_pair = np.full(SLOTS * SLOTS, -1.0)
        for pu in range(1, SLOTS):
            for do in range(1, SLOTS):
                borough_pair[pu * SLOTS + do] = by_borough_pair.get((borough[pu], borough[do]), -1.0)
        order, categories = _tree_inputs(hgb)
        return cls(pickup, dropoff, pair, categories(borough_pair), order)

    def matrix(self, pu: np.ndarray, do: np.ndarray, distance: np.ndarray, hour: np.ndarray, weekday: np.ndarray,
               passengers: np.ndarray) -> np.ndarray:  # fmt: skip
        """The model's feature matrix (the ColumnTransformer's output order) from trip columns."""
        pu, do = _zone_ids(pu), _zone_ids(do)
        key = pu * SLOTS + do
        distance = np.asarray(distance, dtype=np.float64)
        passengers = np.asarray(passengers, dtype=np.float64)
        columns = [
            self.pickup[pu],
            self.dropoff[do],
            self.pair[key],
            self.borough_pair[key],
            distance,
            (distance == 0).astype(np.float64),
            np.asarray(hour, dtype=np.float64),
            np.asarray(weekday, dtype=np.float64),
            np.where(np.isnan(passengers), 1.0, passengers),
        ]
        return np.column_stack([columns[i] for i in self.order])


def _tree_inputs(hgb: HistGradientBoostingRegressor) -> tuple[tuple[int, ...], Any]:
    """How HistGradientBoosting feeds its trees: (column order, borough-pair code -> tree category).

    Fitted with ``categorical_features``, it keeps a ColumnTransformer of its own: an OrdinalEncoder re-codes
    the categorical column (a code it never saw -> NaN, i.e. the missing side) and puts it first."""
    preprocessor = getattr(hgb, "_preprocessor", None)
    if preprocessor is None:
        raise FastPathError("the regressor has no categorical preprocessor: the borough pair is not categorical")
    names = [name for name, _, _ in preprocessor.transformers_ if name != "remainder"]
    encoder = preprocessor.named_transformers_.get("encoder")
    mask = np.asarray(hgb.is_categorical_, dtype=bool)
    if (
        names != ["encoder", "numerical"]
        or not isinstance(encoder, OrdinalEncoder)
        or mask.tolist() != [i == 3 for i in range(9)]
    ):
        raise FastPathError("the regressor's categorical preprocessing is not the one this module compiles")
    order = tuple(int(i) for i in np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)]))
    seen = {float(c): float(i) for i, c in enumerate(encoder.categories_[0]) if c == c}

    def categories(codes: np.ndarray) -> np.ndarray:
        return np.array([seen.get(float(c), np.nan) for c in codes])

    return order, categories


def _kind(transformer: Any) -> Any:
    """A fitted ColumnTransformer keeps "passthrough" as an identity FunctionTransformer: call it that."""
    if isinstance(transformer, FunctionTransformer) and transformer.func is None:
        return "passthrough"
    return transformer if isinstance(transformer, str) else type(transformer)


def _has_remainder(encode: ColumnTransformer) -> bool:
    return any(name == "remainder" and t != "drop" and len(columns) for name, t, columns in encode.transformers_)


def _zone_table(categories: np.ndarray, encodings: np.ndarray, default: float) -> np.ndarray:
    table = np.full(SLOTS, default)
    for category, encoding in zip(categories, encodings, strict=True):
        if str(category).isdigit() and int(category) < SLOTS:
            table[int(category)] = encoding
    return table


def _zone_ids(ids: Any) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) and (ids.min() < 1 or ids.max() >= SLOTS):
        raise ValueError(f"zone ids must be 1..{N_ZONES}")
    return ids


class FastTripModel:
    """A compiled trip pipeline: ``predict_trips`` (Trip objects) and ``predict`` (an INPUT_COLUMNS frame)."""

    def __init__(self, features: Features, trees: Trees):
        self.features = features
        self.trees = trees
        self._pickup, self._dropoff = features.pickup.tolist(), features.dropoff.tolist()
        self._pair, self._borough_pair = features.pair.tolist(), features.borough_pair.tolist()

    def predict_trips(self, trips: Sequence[Any]) -> np.ndarray:
        """Validated trips (ids 1..265, a naive New York pickup time) -> minutes: ``taxi.trip.Trip`` objects, or
        anything with their attributes (``taxi.serving.TripRow``)."""
        if len(trips) == 1:  # one trip: a row of Python floats, no per-column arrays
            return np.array([self.trees.predict_one(self._row(trips[0]))])
        return self.predict_columns(TripColumns.of(trips))

    def predict_columns(self, columns: TripColumns) -> np.ndarray:
        """The same trips as columns (``taxi.trip_columns``) -> minutes."""
        X = self.features.matrix(
            columns.PULocationID, columns.DOLocationID, columns.trip_distance, columns.hour, columns.weekday,
            columns.passenger_count,
        )  # fmt: skip
        return self.trees.predict(X)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """A frame with ``taxi.model.INPUT_COLUMNS`` (as the pipeline takes) -> minutes."""
        pickup = pd.to_datetime(frame["lpep_pickup_datetime"])
        passengers = frame["passenger_count"] if "passenger_count" in frame.columns else np.nan
        X = self.features.matrix(
            frame["PULocationID"].to_numpy(),
            frame["DOLocationID"].to_numpy(),
            frame["trip_distance"].to_numpy(dtype=np.float64),
            pickup.dt.hour.to_numpy(),
            pickup.dt.dayofweek.to_numpy(),
            np.broadcast_to(np.asarray(passengers, dtype=np.float64), len(frame)),
        )
        return self.trees.predict(X)

    def _row(self, trip: Any) -> list[float]:
        pu, do = trip.PULocationID, trip.DOLocationID
        if not (0 < pu < SLOTS and 0 < do < SLOTS):
            raise ValueError(f"zone ids must be 1..{N_ZONES}")
        distance = float(trip.trip_distance)
        pickup = trip.lpep_pickup_datetime
        key = pu * SLOTS + do
        passengers = trip.passenger_count
        row = [
            self._pickup[pu],
            self._dropoff[do],
            self._pair[key],
            self._borough_pair[key],
            distance,
            1.0 if distance == 0 else 0.0,
            float(pickup.hour),
            float(pickup.weekday()),
            1.0 if passengers is None else float(passengers),
        ]
        return [row[i] for i in self.features.order]


def compile_trip_pipeline(pipeline: Any) -> FastTripModel:
    """The fitted pipeline (``build_trip_pipeline``, or ``build_model`` over ``build_features``) compiled."""
    steps = pipeline.steps if isinstance(pipeline, Pipeline) else None
    if steps and isinstance(steps[0][1], FunctionTransformer):
        if steps[0][1].func is not build_features or len(steps) != 2:
            raise FastPathError("the first step is not taxi.model.build_features followed by the model")
        pipeline = steps[1][1]
    kinds = [type(step) for _, step in pipeline.steps] if isinstance(pipeline, Pipeline) else []
    if kinds != [ColumnTransformer, HistGradientBoostingRegressor]:
        kind = " -> ".join(t.__name__ for t in kinds) if kinds else type(pipeline).__name__
        raise FastPathError(f"only the hist_gradient_boosting model compiles (this one: {kind})")
    encode, regressor = (step for _, step in pipeline.steps)
    return FastTripModel(Features.from_transformer(encode, regressor), Trees.from_estimator(regressor))


def check_frame(rows: int = 2000) -> pd.DataFrame:
    """Trips to compare the two paths on: a generated month, every borough pair, and edge inputs."""
    return _check_frame(rows).copy()


@lru_cache(maxsize=1)
def _check_frame(rows: int) -> pd.DataFrame:
    from taxi.generator import generate_month  # the check set is built at load time, not at import

    month = generate_month("2024-03", rows=rows, seed=20240310)[INPUT_COLUMNS]
    zone_of = {}
    for zone, borough in zip(range(1, SLOTS), borough_of(list(range(1, SLOTS))), strict=True):
        zone_of.setdefault(borough, zone)
    zone_of["Unknown 265"] = N_ZONES
    pairs = [(a, b) for a in zone_of.values() for b in zone_of.values()]
    edges = [
        (pu, do, distance, when, passengers)
        for (pu, do) in pairs
        for distance, when, passengers in [(0.0, "2024-03-10 02:30", None), (199.9, "2024-11-03 01:30", 9)]
    ]
    edges += [(74, 42, 1.8, "2024-01-01 00:00", 0), (132, 138, 9.5, "2024-12-31 23:59:59", 1)]
    extra = pd.DataFrame(edges, columns=INPUT_COLUMNS)
    extra["lpep_pickup_datetime"] = pd.to_datetime(extra["lpep_pickup_datetime"], format="ISO8601")
    frame = pd.concat([month, extra], ignore_index=True)
    frame["passenger_count"] = frame["passenger_count"].astype("float64")
    return frame


def max_difference(pipeline: Any, fast: FastTripModel, frame: pd.DataFrame, *, features: bool = False) -> float:
    """Largest |fast - pipeline| over ``frame`` in minutes, both fast ways: the whole frame as one batch, and
    trip by trip (the single-row walk) on its last ``ROW_CHECKS`` trips. ``features``: the pipeline takes model
    features (``build_model``), not raw trips."""
    expected = np.asarray(pipeline.predict(build_features(frame) if features else frame), dtype=np.float64)
    batch = fast.predict(frame)
    tail = frame.tail(ROW_CHECKS)
    rows = np.array([fast.predict_trips([_TripRow(*row)])[0] for row in tail.itertuples(index=False)])
    differences = np.concatenate([np.abs(batch - expected), np.abs(rows - expected[-len(tail) :])])
    return float(np.max(differences))


def fast_path_for(pipeline: Any, *, features: bool = False) -> tuple[FastTripModel | None, str]:
    """(the compiled pipeline, how it was checked), or (None, why the pipeline itself must serve).

    ``features``: ``pipeline`` takes model features (``build_model``), not raw trips (``build_trip_pipeline``).
    """
    try:
        fast = compile_trip_pipeline(pipeline)
        frame = check_frame()
        difference = max_difference(pipeline, fast, frame, features=features)
    except FastPathError as exc:
        log.info("fast path unavailable: %s", exc)
        return None, f"scikit-learn pipeline (not compiled: {exc})"
    if not difference <= TOLERANCE_MIN:  # NaN too
        why = f"scikit-learn pipeline (the compiled path differed by {difference:.3g} min > {TOLERANCE_MIN:g})"
        log.warning("fast path refused: %s", why)
        return None, why
    return fast, f"compiled (taxi.fast_path): max |difference| {difference:.1e} min on {len(frame)} check trips"


@dataclass(frozen=True)
class _TripRow:
    """A check-frame row shaped like a Trip (the single-row path reads attributes)."""

    PULocationID: int
    DOLocationID: int
    trip_distance: float
    lpep_pickup_datetime: Any
    passenger_count: float | None

    def __post_init__(self) -> None:
        if self.passenger_count is not None and self.passenger_count != self.passenger_count:
            object.__setattr__(self, "passenger_count", None)
