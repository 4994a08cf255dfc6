// The methods' results are the operations layer's values and its JSON (`JSONValue`): a user of the daemon's
// API gets both with `import ParleyHeadless`.
@_exported import ParleyOperations
