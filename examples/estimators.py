"""scikit-learn-style estimators built on symgrad: Pipeline, cross_val_score, GridSearchCV.

Run: python examples/estimators.py
"""
import warnings

from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from symgrad.estimators import LogisticRegression, MLPClassifier

X, y = load_digits(return_X_y=True)
for est in (LogisticRegression(C=1.0), SkLogisticRegression(C=1.0, max_iter=2000),
            MLPClassifier(hidden_layer_sizes=(64,), batch_size=32, max_iter=30, random_state=0)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=3)
    print(f"digits, 3-fold CV: {type(est).__module__.split('.')[0]:8s} {type(est).__name__:20s} "
          f"accuracy {scores.mean():.3f}")

X, y = load_breast_cancer(return_X_y=True)
search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                      {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
best = search.best_estimator_[-1]
print("breast cancer: best C", search.best_params_["logisticregression__C"],
      f"CV accuracy {search.best_score_:.3f}; loss curve {best.loss_curve_[0]:.3f} -> "
      f"{best.loss_curve_[-1]:.3f} in {best.n_iter_} L-BFGS iterations")
