#!/usr/bin/env node
// Development entry: same as run.js, but oclif reads commands from dist without the manifest cache.
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
