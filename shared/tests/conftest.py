import pandas as pd
import pytest

from taxi.generator import generate_month


@pytest.fixture(scope="session")
def march() -> pd.DataFrame:
    return generate_month("2024-03", rows=3000)
