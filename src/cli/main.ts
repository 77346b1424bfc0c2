#!/usr/bin/env node
console.log('branching');
