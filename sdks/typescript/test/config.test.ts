/** Realm config (compare-and-swap across two clients) and the models catalog, through real rkat-rpc children. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MeerkatClient, MeerkatError } from "rkat-client";

import { LIMIT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const root = tempDir("config");
const realm = { realmId: "ts-config", realmBackend: "sqlite", stateRoot: root } as const;
const first = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
const second = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
before(() => Promise.all([first.connect(realm), second.connect({ ...realm, instanceId: "worker-2" })]));
after(() => Promise.all([first.close(), second.close()]));

function agent(envelope: { config: Record<string, unknown> }): Record<string, unknown> {
  return envelope.config.agent as Record<string, unknown>;
}

test("config writes compare-and-swap on the generation, across clients of one realm", LIMIT, async () => {
  const config = await first.getConfig();
  assert.equal(config.realmId, "ts-config");
  assert.equal(config.backend, "sqlite");
  assert.equal(typeof config.resolvedPaths.configPath, "string");
  const generation = config.generation;

  const written = await first.setConfig({ agent: { max_turns: 5 } }, { expectedGeneration: generation });
  assert.equal(written.generation, generation + 1);
  assert.equal(agent(written).max_turns, 5);

  const conflict = await second
    .patchConfig({ agent: { max_turns: 6 } }, { expectedGeneration: generation })
    .then(() => undefined, (error: unknown) => error);
  assert.ok(conflict instanceof MeerkatError);
  assert.equal(conflict.code, "CONFIG_GENERATION_CONFLICT");
  assert.equal(conflict.jsonrpcCode, -32602);
  assert.match(conflict.message, /^Generation conflict: expected 0, current 1/);
  assert.deepEqual(conflict.details, { expected_generation: generation, current_generation: generation + 1 });

  // camelCase keys of the typed sections reach the host under its own names.
  const patched = await second.patchConfig({ agent: { maxTokensPerTurn: 2048 } }, { expectedGeneration: generation + 1 });
  assert.equal(agent(patched).max_tokens_per_turn, 2048);
  assert.equal(agent(patched).max_turns, 5);
  assert.equal("maxTokensPerTurn" in agent(patched), false);

  const reset = await first.patchConfig({ agent: { max_turns: null } }); // null resets to the default
  assert.equal(agent(reset).max_turns, 100);
  assert.equal(agent(await second.getConfig()).max_tokens_per_turn, 2048);
  assert.equal((await second.getConfig()).instanceId, "worker-2");
});

test("bad config is INVALID_PARAMS naming the key", LIMIT, async () => {
  const error = await first.patchConfig({ agent: { maxTurns: 0 } }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof MeerkatError && error.code === "INVALID_PARAMS");
  assert.match(error.message, /agent\.max_turns/);
  // A misspelt key is refused too (never silently dropped), naming its path with a did-you-mean.
  const typo = await first.patchConfig({ agent: { maxTurnz: 11 } }).then(() => undefined, (e: unknown) => e);
  assert.ok(typo instanceof MeerkatError && typo.code === "INVALID_PARAMS");
  assert.match(typo.message, /unknown key 'agent\.max_turnz'; did you mean 'agent\.max_turns'/);
  const model = await first.patchConfig({ agent: { model: "no-such-model" } }).then(() => undefined, (e: unknown) => e);
  assert.ok(model instanceof MeerkatError && model.code === "INVALID_PARAMS");
  assert.match(model.message, /agent\.model 'no-such-model' is not a known model/);
});

test("the models catalog lists providers, their models and accepted params", LIMIT, async () => {
  const catalog = await first.getModelsCatalog();
  assert.deepEqual(catalog.contractVersion, { major: 0, minor: 9, patch: 6 });
  const anthropic = catalog.providers.find((p) => p.provider === "anthropic");
  assert.ok(anthropic !== undefined && anthropic.models.some((m) => m.id === anthropic.defaultModelId));
  const model = anthropic.models[0]!;
  assert.equal(typeof model.contextWindow, "number");
  const schema = (model.profile?.paramsSchema ?? {}) as { properties?: Record<string, unknown> };
  assert.ok(schema.properties !== undefined && "reasoning_effort" in schema.properties); // schemas keep their keys
  assert.ok(catalog.providers.some((p) => p.provider === "mock"));
});
