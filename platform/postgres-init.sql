-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as POSTGRES_USER, whose
-- POSTGRES_DB (mlflow) exists already: the Prefect server's database and level 4's prediction store.
CREATE DATABASE prefect;
CREATE DATABASE predictions;
