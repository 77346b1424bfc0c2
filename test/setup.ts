// Shared test setup: nothing global yet; helpers live in test/helpers.
export {};
