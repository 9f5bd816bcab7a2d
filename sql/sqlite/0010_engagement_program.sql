-- Each merchant's engagement program (DESIGN §8), as TOML; NULL: the defaults.
ALTER TABLE merchants ADD COLUMN engagement_program TEXT;
