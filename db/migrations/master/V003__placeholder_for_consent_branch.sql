-- Placeholder so that this branch (limits, which owns V004) migrates without a gap.
-- The consent branch owns V003: drop this file when merging it.
SELECT 1;
