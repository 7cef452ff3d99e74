import FinchFormats
import FinchJinja
