// Reads a game's TypeScript contract (one interface of methods per side) with the TypeScript
// compiler API into a small language-neutral model: named object types, string-literal enums,
// and methods with parameter and result types. Anything the wire or the model can't carry
// (generics, functions, mixed unions, tuples…) fails with an error naming the member.

import ts from 'typescript';

/** A type as the emitters see it. */
export type TypeRef =
  | { kind: 'string' | 'double' | 'long' | 'bool' | 'bytes' | 'date' | 'any' }
  | { kind: 'enum'; name: string }
  | { kind: 'object'; name: string }
  | { kind: 'array'; of: TypeRef }
  | { kind: 'map'; of: TypeRef }
  | { kind: 'nullable'; of: TypeRef };

export interface Field {
  name: string;
  type: TypeRef;
  /** `x?:` — may be absent on the wire (omitted when written). */
  optional: boolean;
  doc?: string;
}

export interface ObjectDef { name: string; fields: Field[]; doc?: string }
export interface EnumDef { name: string; values: string[]; doc?: string }
/** `upload`: the param is an async iterable (`AsyncIterable<T>`, SPEC §12 "Uploads") of `type` items. */
export interface Param { name: string; type: TypeRef; optional: boolean; upload?: boolean }
/** `stream`: the method answers with a stream of `result` items (`AsyncIterable<T>`, SPEC §12). */
export interface MethodDef { name: string; params: Param[]; result: TypeRef | null; stream?: boolean; doc?: string }
export interface ApiDef { name: string; methods: MethodDef[]; doc?: string }

export interface Contract {
  server: ApiDef;
  client: ApiDef;
  objects: ObjectDef[];
  enums: EnumDef[];
}

export class ContractError extends Error {
  override name = 'ContractError';
}

/** What a contract writes a stream (a result) or an upload (a param) as. */
const ASYNC_ITERABLES = new Set(['AsyncIterable', 'AsyncIterableIterator', 'AsyncGenerator']);

/** Type aliases of `number` read as 64-bit integers (`type Int = number`). */
const INTEGER_ALIASES = new Set(['int', 'Int', 'integer', 'Integer', 'long', 'Long', 'int64', 'Int64']);

export interface ReadOptions {
  /** Interface of what clients call on the server; default: the one exported interface named *Server. */
  server?: string;
  /** Interface of what the server calls on clients; default: the one exported interface named *Client. */
  client?: string;
}

export function readContract(file: string, opts: ReadOptions = {}): Contract {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: [],
  });
  const source = program.getSourceFile(file);
  if (!source) throw new ContractError(`${file}: not found`);
  const syntax = program.getSyntacticDiagnostics(source);
  if (syntax.length > 0) throw new ContractError(`${file}: ${ts.flattenDiagnosticMessageText(syntax[0]!.messageText, '\n')}`);
  return new Reader(program.getTypeChecker(), source, opts).read();
}

class Reader {
  readonly objects = new Map<string, ObjectDef>();
  readonly byType = new Map<ts.Type, string>();
  readonly enums = new Map<string, EnumDef>();
  /** Sorted literal set → enum name, from the file's `type X = 'a' | 'b'` aliases. */
  readonly enumBySet = new Map<string, string>();

  constructor(readonly checker: ts.TypeChecker, readonly source: ts.SourceFile, readonly opts: ReadOptions) {}

  read(): Contract {
    const interfaces = new Map<string, ts.InterfaceDeclaration | ts.TypeAliasDeclaration>();
    for (const s of this.source.statements) {
      if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) interfaces.set(s.name.text, s);
      // Named string unions keep their name wherever they are used (even inside `X | null`).
      if (ts.isTypeAliasDeclaration(s)) {
        const lits = this.stringLiterals(this.checker.getTypeAtLocation(s.name));
        if (lits) this.enumBySet.set(lits.slice().sort().join('\u0000'), s.name.text);
      }
    }
    const pick = (given: string | undefined, suffix: string): ts.InterfaceDeclaration | ts.TypeAliasDeclaration => {
      if (given) {
        const d = interfaces.get(given);
        if (!d) throw new ContractError(`${this.source.fileName}: no interface or type named ${given}`);
        return d;
      }
      const found = [...interfaces.values()].filter((d) => d.name.text.endsWith(suffix) && isExported(d));
      if (found.length !== 1)
        throw new ContractError(`${this.source.fileName}: ${found.length} exported interfaces named *${suffix} (${found.map((d) => d.name.text).join(', ') || 'none'}); name it with --${suffix.toLowerCase()} <Interface>`);
      return found[0]!;
    };
    const server = this.api(pick(this.opts.server, 'Server'));
    const client = this.api(pick(this.opts.client, 'Client'));
    return { server, client, objects: [...this.objects.values()], enums: [...this.enums.values()] };
  }

  api(decl: ts.InterfaceDeclaration | ts.TypeAliasDeclaration): ApiDef {
    const name = decl.name.text;
    if (decl.typeParameters?.length) throw new ContractError(`${name}: generic interfaces are not supported`);
    const type = this.checker.getTypeAtLocation(decl.name);
    const methods: MethodDef[] = [];
    for (const prop of this.checker.getPropertiesOfType(type)) {
      const where = `${name}.${prop.name}`;
      const member = prop.valueDeclaration ?? prop.declarations?.[0];
      if (!member) throw new ContractError(`${where}: no declaration`);
      const t = this.checker.getTypeOfSymbolAtLocation(prop, member);
      const sigs = t.getCallSignatures();
      if (sigs.length !== 1) throw new ContractError(`${where}: expected a method (one call signature), got ${sigs.length === 0 ? this.checker.typeToString(t) : 'overloads'}`);
      const sig = sigs[0]!;
      if (sig.getTypeParameters()?.length) throw new ContractError(`${where}: generic methods are not supported`);
      const params: Param[] = [];
      for (const p of sig.getParameters()) {
        const pd = p.valueDeclaration as ts.ParameterDeclaration | undefined;
        if (pd?.dotDotDotToken) throw new ContractError(`${where}(...${p.name}): rest parameters are not supported`);
        const optional = !!pd && (!!pd.questionToken || !!pd.initializer);
        const pt = this.checker.getTypeOfSymbolAtLocation(p, pd ?? member);
        const pwhere = `${where}(${p.name})`;
        // AsyncIterable<T>: an upload of T items (SPEC §12), which goes with a call, always.
        const bare = pt.isUnion() ? pt.types.filter((x) => !(x.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined | ts.TypeFlags.Void))) : [pt];
        const item = bare.length === 1 ? this.asyncItem(bare[0]!) : undefined;
        if (item) {
          if (optional || bare[0] !== pt) throw new ContractError(`${pwhere}: an upload can't be optional or null (pass an empty one)`);
          const inode = pd?.type && ts.isTypeReferenceNode(pd.type) ? pd.type.typeArguments?.[0] : undefined;
          params.push({ name: p.name, optional, upload: true, type: this.type(item, inode, `${pwhere}: upload item`, pascal(prop.name) + pascal(p.name) + 'Item') });
        } else params.push({ name: p.name, optional, type: this.type(pt, pd?.type, pwhere, pascal(prop.name) + pascal(p.name)) });
      }
      let rt = sig.getReturnType();
      const awaited = this.checker.getAwaitedType(rt);
      if (awaited) rt = awaited;
      let rnode = ts.isMethodSignature(member) || ts.isPropertySignature(member) ? unwrapPromiseNode(returnNode(member)) : undefined;
      // AsyncIterable<T>: a stream of T items (SPEC §12).
      const streamed = this.asyncItem(rt);
      if (streamed) {
        rt = streamed;
        rnode = rnode && ts.isTypeReferenceNode(rnode) ? rnode.typeArguments?.[0] : undefined;
      }
      const result = rt.flags & (ts.TypeFlags.Void | ts.TypeFlags.Undefined | ts.TypeFlags.Null | ts.TypeFlags.Never)
        ? null
        : this.type(rt, rnode, `${where}(): ${streamed ? 'stream item' : 'result'}`, pascal(prop.name) + (streamed ? 'Item' : 'Result'));
      if (streamed && !result) throw new ContractError(`${where}(): a stream of nothing carries nothing`);
      methods.push({ name: prop.name, params, result, ...(streamed ? { stream: true } : {}), doc: docOf(prop, this.checker) });
    }
    return { name, methods, doc: docOfNode(decl) };
  }

  /** T of an `AsyncIterable<T>` (or AsyncIterableIterator, AsyncGenerator); undefined for any other type. */
  asyncItem(t: ts.Type): ts.Type | undefined {
    return ASYNC_ITERABLES.has(t.getSymbol()?.getName() ?? '') ? this.checker.getTypeArguments(t as ts.TypeReference)[0] : undefined;
  }

  /** `node` is the written type when there is one (it keeps `Int` aliases the checker erases). */
  type(t: ts.Type, node: ts.TypeNode | undefined, where: string, contextName: string): TypeRef {
    const F = ts.TypeFlags;
    // `(Int | undefined)[]`: the written type inside the parentheses keeps its alias.
    while (node && ts.isParenthesizedTypeNode(node)) node = node.type;
    if (t.flags & (F.Any | F.Unknown)) return { kind: 'any' };
    if (t.isUnion()) {
      const rest = t.types.filter((x) => !(x.flags & (F.Null | F.Undefined | F.Void)));
      const nullable = rest.length !== t.types.length;
      const inner = this.union(t, rest, node, where, contextName);
      return nullable ? nullableOf(inner) : inner;
    }
    if (t.flags & F.String) return { kind: 'string' };
    if (t.flags & F.Number) return { kind: integerAlias(node) ? 'long' : 'double' };
    if (t.flags & F.Boolean || t.flags & F.BooleanLiteral) return { kind: 'bool' };
    if (t.flags & F.StringLiteral) return this.enumOf([(t as ts.StringLiteralType).value], where, contextName);
    if (t.flags & (F.Null | F.Undefined | F.Void)) throw new ContractError(`${where}: a type that is only null/undefined carries nothing`);
    if (t.flags & (F.BigInt | F.BigIntLiteral)) throw new ContractError(`${where}: bigint does not cross the wire (msgpackr decodes int64 as number)`);
    if (t.flags & F.NumberLiteral) throw new ContractError(`${where}: number literal types are not supported (use number)`);
    if (t.flags & (F.ESSymbol | F.UniqueESSymbol)) throw new ContractError(`${where}: symbols do not cross the wire`);
    if (t.flags & F.TypeParameter) throw new ContractError(`${where}: generic type parameter ${this.checker.typeToString(t)} is not supported`);
    if (this.checker.isTupleType(t)) throw new ContractError(`${where}: tuples are not supported (use an array or an object)`);
    if (this.checker.isArrayType(t)) {
      const el = this.checker.getTypeArguments(t as ts.TypeReference)[0]!;
      const elNode = node && ts.isArrayTypeNode(node) ? node.elementType : node && ts.isTypeReferenceNode(node) ? node.typeArguments?.[0] : undefined;
      return { kind: 'array', of: this.type(el, elNode, `${where}[]`, contextName + 'Item') };
    }
    if (t.getCallSignatures().length > 0) throw new ContractError(`${where}: function types do not cross the wire`);
    const symName = t.getSymbol()?.getName();
    if (symName === 'Uint8Array' || symName === 'Buffer') return { kind: 'bytes' };
    if (symName === 'Date') return { kind: 'date' };
    if (symName === 'Promise') throw new ContractError(`${where}: a promise is only allowed as a method's result`);
    if (ASYNC_ITERABLES.has(symName ?? '')) throw new ContractError(`${where}: an async iterable is only allowed as a method's param (an upload) or its result (a stream)`);
    if (symName === 'Map' || symName === 'Set') throw new ContractError(`${where}: ${symName} does not cross the wire as such (use Record<string, T> or an array)`);
    if (t.flags & F.Object || t.isIntersection()) return this.object(t, node, where, contextName);
    throw new ContractError(`${where}: unsupported type ${this.checker.typeToString(t)}`);
  }

  union(t: ts.UnionType, rest: ts.Type[], node: ts.TypeNode | undefined, where: string, contextName: string): TypeRef {
    const F = ts.TypeFlags;
    const restNode = node && ts.isUnionTypeNode(node) ? nonNullMember(node) : node;
    if (rest.length === 0) throw new ContractError(`${where}: a type that is only null/undefined carries nothing`);
    if (rest.every((x) => x.flags & F.BooleanLiteral)) return { kind: 'bool' };
    if (rest.length === 1) return this.type(rest[0]!, restNode, where, contextName);
    const lits = rest.every((x) => x.flags & F.StringLiteral) ? rest.map((x) => (x as ts.StringLiteralType).value) : undefined;
    if (lits) {
      const alias = (t.aliasSymbol && !t.aliasTypeArguments ? t.aliasSymbol.name : undefined) ?? this.enumBySet.get(lits.slice().sort().join('\u0000'));
      return this.enumOf(lits, where, alias ?? contextName);
    }
    throw new ContractError(`${where}: unions other than string literals (and | null / | undefined) are not supported: ${this.checker.typeToString(t)}`);
  }

  enumOf(values: string[], where: string, name: string): TypeRef {
    const have = this.enums.get(name);
    if (have && have.values.join('\u0000') !== values.join('\u0000'))
      throw new ContractError(`${where}: enum name ${name} already used for ${have.values.join(' | ')}`);
    if (!have) {
      const members = new Set<string>();
      for (const v of values) {
        const m = pascal(v);
        if (!/^[A-Za-z_]/.test(m) || members.has(m)) throw new ContractError(`${where}: string literal '${v}' has no distinct C# name`);
        members.add(m);
      }
      this.enums.set(name, { name, values });
    }
    return { kind: 'enum', name };
  }

  object(t: ts.Type, node: ts.TypeNode | undefined, where: string, contextName: string): TypeRef {
    const checker = this.checker;
    // Record<string, T> and { [key: string]: T }: a map.
    const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
    const props = checker.getPropertiesOfType(t);
    if (index) {
      if (props.length > 0) throw new ContractError(`${where}: an object with both an index signature and named members is not supported`);
      const valueNode = node && ts.isTypeReferenceNode(node) && node.typeArguments?.length === 2 ? node.typeArguments[1] : undefined;
      return { kind: 'map', of: this.type(index.type, valueNode, `${where}[key]`, contextName + 'Value') };
    }
    if (checker.getIndexInfoOfType(t, ts.IndexKind.Number)) throw new ContractError(`${where}: number-keyed index signatures are not supported`);
    const known = this.byType.get(t);
    if (known) return { kind: 'object', name: known };
    if (isGenericInstance(t))
      throw new ContractError(`${where}: generic type ${checker.typeToString(t)} is not supported`);
    const sym = t.aliasSymbol ?? t.getSymbol();
    const declared = sym && !sym.name.startsWith('__') ? sym.name : undefined;
    let name = declared ?? contextName;
    if (this.objects.has(name)) {
      if (declared) throw new ContractError(`${where}: two different types named ${name}`);
      let i = 2;
      while (this.objects.has(name + i)) i++;
      name = name + i;
    }
    const def: ObjectDef = { name, fields: [], doc: sym ? docOf(sym, checker) : undefined };
    this.byType.set(t, name);
    this.objects.set(name, def);
    for (const p of props) {
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      const fwhere = `${where} → ${name}.${p.name}`;
      if (decl && (ts.isMethodSignature(decl) || ts.isMethodDeclaration(decl))) throw new ContractError(`${fwhere}: methods do not cross the wire`);
      const pt = checker.getTypeOfSymbolAtLocation(p, decl ?? this.source);
      const tnode = decl && (ts.isPropertySignature(decl) || ts.isPropertyDeclaration(decl)) ? decl.type : undefined;
      const optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      def.fields.push({ name: p.name, optional, type: this.type(pt, tnode, fwhere, name + pascal(p.name)), doc: docOf(p, checker) });
    }
    return { kind: 'object', name };
  }

  stringLiterals(t: ts.Type): string[] | undefined {
    if (!t.isUnion()) return undefined;
    if (!t.types.every((x) => x.flags & ts.TypeFlags.StringLiteral)) return undefined;
    return t.types.map((x) => (x as ts.StringLiteralType).value);
  }
}

function nullableOf(t: TypeRef): TypeRef {
  return t.kind === 'nullable' || t.kind === 'any' ? t : { kind: 'nullable', of: t };
}

function integerAlias(node: ts.TypeNode | undefined): boolean {
  return !!node && ts.isTypeReferenceNode(node) && ts.isIdentifier(node.typeName) && INTEGER_ALIASES.has(node.typeName.text);
}

function nonNullMember(node: ts.UnionTypeNode): ts.TypeNode | undefined {
  const rest = node.types.filter((n) => !(n.kind === ts.SyntaxKind.NullKeyword || n.kind === ts.SyntaxKind.UndefinedKeyword
    || (ts.isLiteralTypeNode(n) && n.literal.kind === ts.SyntaxKind.NullKeyword)));
  return rest.length === 1 ? rest[0] : undefined;
}

function returnNode(member: ts.MethodSignature | ts.PropertySignature): ts.TypeNode | undefined {
  if (ts.isMethodSignature(member)) return member.type;
  return member.type && ts.isFunctionTypeNode(member.type) ? member.type.type : undefined;
}

function unwrapPromiseNode(node: ts.TypeNode | undefined): ts.TypeNode | undefined {
  if (node && ts.isTypeReferenceNode(node) && ts.isIdentifier(node.typeName) && node.typeName.text === 'Promise') return node.typeArguments?.[0];
  return node;
}

function isExported(d: ts.Node): boolean {
  return ts.canHaveModifiers(d) && !!ts.getModifiers(d)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function docOf(sym: ts.Symbol, checker: ts.TypeChecker): string | undefined {
  const text = ts.displayPartsToString(sym.getDocumentationComment(checker)).trim();
  return text || undefined;
}

function docOfNode(node: ts.Node): string | undefined {
  const docs = (node as { jsDoc?: { comment?: string | unknown }[] }).jsDoc;
  const c = docs?.[0]?.comment;
  return typeof c === 'string' && c.trim() ? c.trim() : undefined;
}

/** `leave-queue`, `leaveQueue`, `leave_queue` → LeaveQueue. */
export function pascal(s: string): string {
  const words = s.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/** `Box<number>` and the like: an instance of a generic interface, class or alias. */
function isGenericInstance(t: ts.Type): boolean {
  if (t.aliasTypeArguments?.length) return true;
  const decls = (t.aliasSymbol ?? t.getSymbol())?.declarations ?? [];
  return decls.some((d) => (ts.isInterfaceDeclaration(d) || ts.isClassDeclaration(d) || ts.isTypeAliasDeclaration(d)) && !!d.typeParameters?.length);
}
