"""Every text the built-in agents say, one table per language: Portuguese (the default) and English.
Templates take `str.format` fields; the investigation texts they quote (findings, anomaly
descriptions, filters, source names) come from `engines.contracts.texts`."""
from __future__ import annotations

from typing import Any

from engines.contracts.texts import EN, PT, language

PT_TEXTS = {
    "started": "Iniciei a investigação {id}. Vou comparar o preço de cada contrato com contratos semelhantes, "
               "verificar a concentração de fornecedores por órgão, procurar compras fracionadas abaixo do limite "
               "de dispensa e contratos duplicados. {scope} {source} Acompanhe em tempo real: inscreva-se em {id}.",
    "scope": "Contratos pedidos: {filters}.",
    "scope_all": "Nenhum filtro reconhecido no pedido: analiso todos os contratos da fonte.",
    "source_sample": "Fonte dos dados: um conjunto de dados sintético, gerado para demonstração, com anomalias "
                     "plantadas de propósito; não são contratos reais.",
    "source_transparencia": "Fonte dos dados: Portal da Transparência do Governo Federal.",
    "source_upload": "Fonte dos dados: os contratos enviados.",
    "source_none": "Fonte dos dados: nenhuma fonte de contratos está configurada.",
    "progress": "A investigação {id} está {status}: {progress}%",
    "queued": "na fila", "running": "em andamento", "completed": "concluída", "failed": "interrompida",
    "none_yet": "Ainda não há investigação nesta sessão. Peça, por exemplo: "
                "\"Investigar contratos do Ministério da Saúde\".",
    "no_anomalies": "Nenhuma anomalia encontrada até agora. {progress}.",
    "anomalies": "Encontrei {count} anomalias em {id}; as {shown} mais graves:\n",
    "anomaly": "- [{severity}] {description}. Contrato {contract}: {actual}, quando o esperado seria {expected}.\n",
    "synthetic": "Atenção: são dados de exemplo sintéticos, gerados para demonstração com anomalias plantadas de "
                 "propósito, não contratos reais.",
    "not_ready": "O relatório ainda não está pronto. {progress}.",
    "report": "Relatório de {id}: {contracts} contratos analisados, {anomalies} anomalias ({severities}). "
              "{kinds}{findings} {source} Leia em {url}",
    "none": "nenhuma",
    "help": "Posso investigar contratos públicos e explicar o que encontrar. Experimente: "
            "\"Investigar contratos do Ministério da Saúde\" (Zumbi inicia a análise; diga também fornecedor, "
            "período ou faixa de valor, como \"de março a junho de 2025 acima de R$ 100 mil\"), "
            "\"Qual o andamento?\" (Zumbi informa o progresso), "
            "\"Explique as anomalias\" (Anita mostra as evidências) ou "
            "\"Resuma o relatório\" (Tiradentes resume as conclusões).",
    "system": "Você é o Cidadão.AI, um assistente que ajuda cidadãos a entender contratos públicos brasileiros. "
              "Responda em português, com clareza, e diga quando não souber. Dados da investigação da sessão "
              "(podem ser sintéticos; se forem, diga isso):\n{grounding}",
    "no_grounding": "(nenhuma investigação nesta sessão)",
}

EN_TEXTS = {
    "started": "I started investigation {id}. I will compare each contract's price with similar contracts, check "
               "supplier concentration per agency, and look for purchases split below the direct-purchase limit "
               "and for duplicate contracts. {scope} {source} Follow it live: subscribe to {id}.",
    "scope": "Contracts asked for: {filters}.",
    "scope_all": "No filter recognised in the request: I am analysing every contract of the source.",
    "source_sample": "Data source: a synthetic data set generated for demonstration, with anomalies planted on "
                     "purpose; these are not real contracts.",
    "source_transparencia": "Data source: the Brazilian Federal Government's Portal da Transparência.",
    "source_upload": "Data source: the uploaded contracts.",
    "source_none": "Data source: no contracts source is configured.",
    "progress": "Investigation {id} is {status}: {progress}%",
    "queued": "queued", "running": "running", "completed": "complete", "failed": "stopped",
    "none_yet": "There is no investigation in this session yet. Ask, for example: "
                "\"Investigate contracts of the Ministry of Health\".",
    "no_anomalies": "No anomaly found so far. {progress}.",
    "anomalies": "I found {count} anomalies in {id}; the {shown} most serious:\n",
    "anomaly": "- [{severity}] {description}. Contract {contract}: {actual}, where {expected} would be expected.\n",
    "synthetic": "Note: this is synthetic sample data, generated for demonstration with anomalies planted on "
                 "purpose, not real contracts.",
    "not_ready": "The report is not ready yet. {progress}.",
    "report": "Report of {id}: {contracts} contracts analysed, {anomalies} anomalies ({severities}). "
              "{kinds}{findings} {source} Read it at {url}",
    "none": "none",
    "help": "I can investigate public contracts and explain what I find. Try: "
            "\"Investigate contracts of the Ministry of Health\" (Zumbi starts the analysis; you may add a supplier, "
            "a period or a value range, such as \"from March to June 2025 over R$ 100k\"), "
            "\"What's the progress?\" (Zumbi reports how far it is), "
            "\"Explain the anomalies\" (Anita shows the evidence) or "
            "\"Summarise the report\" (Tiradentes sums up the findings).",
    "system": "You are Cidadão.AI, an assistant that helps citizens understand Brazilian public contracts. "
              "Answer in English, clearly, and say when you do not know. The session's investigation data "
              "(it may be synthetic; if so, say it):\n{grounding}",
    "no_grounding": "(no investigation in this session)",
}

TEXTS = {PT: PT_TEXTS, EN: EN_TEXTS}


def say(lang: str, key: str, **fields: Any) -> str:
    """The agents' text `key` in a language, its fields filled in."""
    return TEXTS[language(lang)][key].format(**fields)


def source_sentence(source: str | None, lang: str) -> str:
    """Where an investigation's data comes from, truthfully: synthetic sample, the Portal, or an upload."""
    key = f"source_{source}"
    return say(lang, key if key in PT_TEXTS else "source_none")
