-- Runs once, when the postgres container initialises its volume: one database per service.
CREATE DATABASE orders;
CREATE DATABASE users;
