"""scikit-learn conventions: parametrize_with_checks, Pipeline, GridSearchCV, cross_val_score."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from chainrule.sklearn import NetworkClassifier, NetworkRegressor

# Checks expected to fail, each with its reason (none at present).
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(
    [NetworkClassifier(hidden_layer_sizes=(32,), random_state=0),
     NetworkRegressor(hidden_layer_sizes=(32,), random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pipeline_grid_search_and_cross_validation():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NetworkClassifier(max_iter=300, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.85
    grid = GridSearchCV(pipe, {"networkclassifier__hidden_layer_sizes": [(4,), (32,)]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.85 and grid.best_params_


def test_regressor_learns_diabetes():
    X, y = load_diabetes(return_X_y=True)
    reg = make_pipeline(StandardScaler(), NetworkRegressor(hidden_layer_sizes=(32,),
                                                            max_iter=300, random_state=0))
    assert cross_val_score(reg, X, y, cv=3).mean() > 0.3


def test_attributes_early_stopping_and_partial_fit():
    X, y = load_iris(return_X_y=True)
    clf = NetworkClassifier(early_stopping=True, max_iter=500, n_iter_no_change=5,
                            random_state=0).fit(X, y)
    assert clf.n_features_in_ == 4 and list(clf.classes_) == [0, 1, 2]
    assert 1 <= clf.n_iter_ < 500 and len(clf.loss_curve_) == clf.n_iter_
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert np.allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    inc = NetworkClassifier(learning_rate=0.01, random_state=0)
    for _ in range(30):
        inc.partial_fit(X, y, classes=[0, 1, 2])
    assert inc.n_iter_ == 30 and inc.score(X, y) > 0.8
    with pytest.raises(ValueError, match="classes must be passed"):
        NetworkClassifier().partial_fit(X, y)


def test_string_labels_and_pickle_holds_no_python_objects():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NetworkClassifier(max_iter=50, random_state=0).fit(X, names)
    assert set(clf.predict(X)) <= set(names)
    blob = pickle.dumps(clf)
    again = pickle.loads(blob)
    assert np.array_equal(again.predict(X), clf.predict(X))
    assert b"chainrule.model" in blob  # the network travels as safetensors bytes
