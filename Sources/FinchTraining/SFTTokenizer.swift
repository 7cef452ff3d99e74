import FinchTokenizers
import Foundation

/// SFT tokenization settings, with TRL 1.16's `SFTConfig` names in the comments.
public struct SFTTokenizationOptions: Sendable {
    /// `max_length`: each sequence is cut to this many tokens (without packing; with packing,
    /// ``SFTPacking`` cuts or splits, as TRL). nil: no limit.
    public var maxLength: Int? = 1024
    /// `truncation_mode` (keep_end is deprecated in TRL 1.16 but still applied).
    public var truncationMode: DPOTruncationMode = .keepStart
    /// `completion_only_loss`: nil (TRL's default) means on when the first row has a prompt and a
    /// completion (prompt-completion and Alpaca rows), off otherwise. It only masks rows that have
    /// a prompt: with text or messages rows it changes nothing, as in TRL.
    public var completionOnlyLoss: Bool?
    /// `assistant_only_loss`: loss only on the text inside the chat template's
    /// `{% generation %}` blocks (conversational rows only).
    public var assistantOnlyLoss = false
    /// `packing`: leave `max_length` to ``SFTPacking`` and keep fully masked sequences, as TRL's
    /// preparation does when it packs.
    public var packing = false
    /// `eos_token`: the EOS string appended to texts and completions and given to the chat
    /// template (nil: the tokenizer's). It must be a token of the vocabulary.
    public var eosToken: String?
    /// A chat template to use instead of the tokenizer's (`chat_template_path`; nil: the
    /// tokenizer's, or ChatML when it has none).
    public var chatTemplate: ChatTemplate?

    public init(maxLength: Int? = 1024, truncationMode: DPOTruncationMode = .keepStart, completionOnlyLoss: Bool? = nil,
                assistantOnlyLoss: Bool = false, packing: Bool = false, eosToken: String? = nil, chatTemplate: ChatTemplate? = nil) {
        self.maxLength = maxLength
        self.truncationMode = truncationMode
        self.completionOnlyLoss = completionOnlyLoss
        self.assistantOnlyLoss = assistantOnlyLoss
        self.packing = packing
        self.eosToken = eosToken
        self.chatTemplate = chatTemplate
    }
}

/// Turns SFT examples into token ids and labels the way TRL 1.16's `SFTTrainer._prepare_dataset`
/// does (issue 8; reference/README.md "SFT data").
public enum SFTTokenizer {
    /// Tokenizes, masks, truncates and filters `examples`.
    ///
    /// Per example, in TRL 1.16's order:
    /// 1. Alpaca rows become prompt-completion rows (``SFTExample/alpacaPrompt(instruction:input:)``).
    /// 2. Text rows: the EOS string is appended unless the text ends with it; `ids = encode(text)`
    ///    with the tokenizer's special tokens (BOS for tokenizers that add one). Every token is
    ///    labeled.
    /// 3. Prompt-completion strings: EOS is appended to the completion the same way;
    ///    `P = encode(prompt)`, `PC = encode(prompt + completion)`; the completion starts where
    ///    `P` stops being a prefix of `PC` (TRL's `common_prefix_length`, warned about when tokens
    ///    merge across the boundary). The sequence is `PC`.
    /// 4. Conversations (never given an EOS: the template ends the turns): prompt-completion rows
    ///    have `P` = the prompt rendered with the generation prompt and `PC` = prompt + completion
    ///    rendered without it; messages rows are rendered whole. Rendered text is tokenized
    ///    without special tokens. With `assistantOnlyLoss`, the tokens overlapping the template's
    ///    `{% generation %}` output form the assistant mask (transformers'
    ///    `return_assistant_tokens_mask`); a row without assistant tokens is an error.
    /// 5. Labels: the id where every mask in effect is 1, −100 elsewhere — the completion mask
    ///    (0 over `P`'s prefix) when `completion_only_loss` is on and the row has a prompt, the
    ///    assistant mask with `assistant_only_loss`.
    /// 6. Without packing and with `max_length`: each sequence is cut (keep_start: its first
    ///    `max_length` tokens; keep_end: its last), and sequences left with no label are dropped
    ///    and counted.
    ///
    /// As in ``DPOTokenizer``, Finch never doubles BOS or EOS where TRL 1.16 would (a text that
    /// starts with the BOS string under a tokenizer that adds BOS; a text or completion ending
    /// with the EOS string followed by whitespace), and warns.
    ///
    /// TRL's checks are kept: `assistant_only_loss` needs conversational rows and a template with
    /// `{% generation %}` markers (TRL 1.16 swaps in its own training template for some 30 model
    /// families it recognises; Finch does not: give such a template in `chatTemplate`), and a
    /// template whose assistant mask ends on content rather than an end-of-turn token is warned
    /// about (the model would not learn to stop).
    ///
    /// - Returns: the kept sequences in input order, statistics, and warnings for a person.
    /// - Throws: ``TrainingError`` for invalid options, a row the template fails on or that has no
    ///   assistant token (naming its location), or when no sequence is left.
    public static func tokenize(_ examples: [SFTExample], tokenizer: Tokenizer, options: SFTTokenizationOptions = .init()) throws
        -> (sequences: [SFTSequence], statistics: SFTDatasetStatistics, warnings: [String]) {
        if let maxLength = options.maxLength, maxLength <= 0 {
            throw TrainingError("max_length", "must be a positive number of tokens (or unset), not \(maxLength)")
        }
        if let eos = options.eosToken, tokenizer.id(of: eos) == nil {
            throw TrainingError("eos_token", "\(eos.debugDescription) is not a token of the tokenizer's vocabulary (\(tokenizer.path))")
        }
        guard let first = examples.first else { throw TrainingError("dataset", "no SFT examples to tokenize") }
        var preparation = SFTPreparation(tokenizer: tokenizer, options: options)
        let completionOnlyLoss = options.completionOnlyLoss ?? first.format.hasCompletion
        if options.completionOnlyLoss == true, !first.format.hasCompletion {
            preparation.context.warnings.note("completion-only", at: "", "completion_only_loss is on but the rows have no prompt and "
                                              + "completion (\(first.format.rawValue)): every token is trained, as in TRL")
        }
        if options.assistantOnlyLoss { try preparation.checkAssistantOnlyLoss(first) }
        var sequences: [SFTSequence] = []
        var dropped: [String] = []
        for example in examples {
            let (ids, completionMask, assistantMask) = try preparation.tokenize(example)
            var labels = ids
            for t in labels.indices {
                if completionOnlyLoss, let completionMask, completionMask[t] == 0 { labels[t] = SFTSequence.ignoreIndex }
                if let assistantMask, assistantMask[t] == 0 { labels[t] = SFTSequence.ignoreIndex }
            }
            var sequence = SFTSequence(inputIDs: ids, labels: labels, location: example.location)
            if let maxLength = options.maxLength, !options.packing {
                sequence = sequence.truncated(to: maxLength, keepEnd: options.truncationMode == .keepEnd)
                if sequence.labeledTokenCount == 0 {
                    dropped.append(sequence.location)
                    preparation.context.warnings.note("dropped", at: sequence.location, "dropped: no token with a label is left within "
                                                      + "max_length (\(maxLength)) tokens (TRL 1.16 filters such examples)")
                    continue
                }
            } else if sequence.labeledTokenCount == 0 {
                preparation.context.warnings.note("unlabeled", at: sequence.location, "no token of the sequence has a label: it adds no loss")
            }
            sequences.append(sequence)
        }
        guard !sequences.isEmpty else {
            throw TrainingError("max_length", "all \(examples.count) examples were dropped: none has a labeled token within the first "
                                + "\(options.maxLength ?? 0) tokens; raise max_length")
        }
        let statistics = SFTDatasetStatistics(sequences: sequences, droppedLocations: dropped, completionOnlyLoss: completionOnlyLoss,
                                              assistantOnlyLoss: options.assistantOnlyLoss)
        return (sequences, statistics, preparation.context.warnings.lines)
    }

    /// A sequence as `finch sft --dry-run` prints it: a header line (location, length, labeled
    /// tokens, truncation), then its tokens in runs, each run on a line marked `masked` (label
    /// −100) or `trained`, each token's text in ⟨⟩ as ``DPOTokenizer/describe(_:tokenizer:)``
    /// writes it.
    public static func describe(_ sequence: SFTSequence, tokenizer: Tokenizer) -> String {
        var lines = ["\(sequence.location): \(sequence.count) tokens, \(sequence.labeledTokenCount) labeled"
                     + (sequence.isTruncated ? " (truncated)" : "")]
        var start = 0
        while start < sequence.count {
            let masked = sequence.labels[start] == SFTSequence.ignoreIndex
            var end = start + 1
            while end < sequence.count, (sequence.labels[end] == SFTSequence.ignoreIndex) == masked { end += 1 }
            lines.append((masked ? "  masked   " : "  trained  ") + DPOTokenizer.marked(Array(sequence.inputIDs[start..<end]), tokenizer))
            start = end
        }
        return lines.joined(separator: "\n")
    }
}

/// The per-example part of ``SFTTokenizer/tokenize(_:tokenizer:options:)``: rendering and
/// tokenization before masking and truncation.
struct SFTPreparation {
    let options: SFTTokenizationOptions
    var context: TokenizationContext
    var tokenizer: Tokenizer { context.tokenizer }

    init(tokenizer: Tokenizer, options: SFTTokenizationOptions) {
        self.options = options
        context = TokenizationContext(tokenizer: tokenizer, chatTemplate: options.chatTemplate, eosToken: options.eosToken, unit: "example")
    }

    /// The ids, the completion mask (prompt-completion rows) and the assistant mask (with
    /// `assistant_only_loss`) of one example.
    mutating func tokenize(_ input: SFTExample) throws -> (ids: [Int], completionMask: [Int]?, assistantMask: [Int]?) {
        let example = input.normalized
        let location = example.location
        switch example.content {
        case .text(let text):
            var sequences = [tokenizer.encode(context.appendingEOS(text, location: location, what: "a text"))]
            context.removeDoubledBOS(&sequences, location: location, what: "a text")
            var ids = sequences[0]
            context.removeDoubledEOS(&ids, location: location, what: "a text")
            return (ids, nil, nil)
        case let .promptCompletion(prompt, completion):
            var sequences = [tokenizer.encode(prompt), tokenizer.encode(prompt + context.appendingEOS(completion, location: location, what: "a completion"))]
            context.removeDoubledBOS(&sequences, location: location, what: "a prompt")
            var pc = sequences[1]
            context.removeDoubledEOS(&pc, location: location, what: "a completion")
            return (pc, completionMask(prompt: sequences[0], sequence: pc, location: location), nil)
        case let .conversationalPromptCompletion(prompt, completion):
            let p = tokenizer.encode(try context.render(prompt, addGenerationPrompt: true, location: location), addSpecialTokens: false)
            let (pc, assistantMask) = try conversation(prompt + completion, location: location)
            return (pc, completionMask(prompt: p, sequence: pc, location: location), assistantMask)
        case .messages(let messages):
            let (ids, assistantMask) = try conversation(messages, location: location)
            return (ids, nil, assistantMask)
        case .alpaca:
            preconditionFailure("normalized examples hold no Alpaca rows")
        }
    }

    mutating func completionMask(prompt: [Int], sequence: [Int], location: String) -> [Int] {
        let split = TokenizationContext.commonPrefixLength(prompt, sequence)
        if split < prompt.count { context.noteBoundary(Array(prompt[split...]), location: location) }
        return [Int](repeating: 0, count: split) + [Int](repeating: 1, count: sequence.count - split)
    }

    /// A rendered conversation's ids, and its assistant mask with `assistant_only_loss`.
    mutating func conversation(_ messages: [ChatMessage], location: String) throws -> (ids: [Int], assistantMask: [Int]?) {
        guard options.assistantOnlyLoss else {
            return (tokenizer.encode(try context.render(messages, addGenerationPrompt: false, location: location), addSpecialTokens: false), nil)
        }
        let (ids, mask) = try context.renderWithAssistantMask(messages, location: location)
        guard mask.contains(1) else {
            throw TrainingError(location, "assistant_only_loss: the rendered conversation has no assistant token (no {% generation %} "
                                + "block produced text); check that the chat template marks assistant turns and the row has one")
        }
        return (ids, mask)
    }

    /// TRL 1.16's checks before tokenizing with `assistant_only_loss`.
    mutating func checkAssistantOnlyLoss(_ first: SFTExample) throws {
        guard first.format.isConversational else {
            throw TrainingError("assistant_only_loss", "only conversational datasets (messages, or prompt/completion message lists) have "
                                + "assistant turns; this one is \(first.format.rawValue)")
        }
        let template = try context.chatTemplate()
        guard template.hasGenerationMarkers else {
            throw TrainingError("assistant_only_loss", "the chat template (\(template.origin)) has no {% generation %} markers, so no token can "
                                + "be told to be the assistant's; give a template that wraps assistant turns in {% generation %}…{% endgeneration %} "
                                + "(TRL 1.16 swaps in its own training template for the model families it knows, and fails likewise for others)")
        }
        // TRL's is_chat_template_stop_token_trained: the last masked token that is not whitespace
        // must be an added token (an end-of-turn token), else the model never learns to stop.
        let probe = [ChatMessage(role: "user", content: "dummy"), ChatMessage(role: "assistant", content: "dummy"),
                     ChatMessage(role: "user", content: "dummy")]
        var trained = false
        if let rendered = try? context.renderWithAssistantMask(probe, location: "") {
            let added = Set(tokenizer.addedTokens.map(\.id))
            for (id, bit) in zip(rendered.ids, rendered.mask).reversed() where bit == 1 {
                if tokenizer.decode([id]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
                trained = added.contains(id)
                break
            }
        }
        if !trained {
            context.warnings.note("stop-token", at: "", "the chat template does not include the assistant turn's end-of-turn token in "
                                  + "the loss mask; the model may not learn to stop (put the end-of-turn token inside "
                                  + "{% generation %}…{% endgeneration %}, or train on the full sequence)")
        }
    }
}
